// scimd console: copy buttons and confirmations. Loaded as a file (the Content-Security-Policy
// forbids inline script); every page also works without it.
(function () {
  "use strict";

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http consoles on other hosts are not a secure context: fall back to a selection.
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "offscreen";
      document.body.appendChild(area);
      area.select();
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      document.body.removeChild(area);
      if (ok) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  document.addEventListener("click", function (ev) {
    var button = ev.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var label = button.textContent;
    copyText(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      button.setAttribute("data-copied", "true");
    }, function () {
      // Select the text so the operator can press Ctrl+C.
      var range = document.createRange();
      range.selectNodeContents(source);
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      button.textContent = "Press Ctrl+C";
    });
    setTimeout(function () { button.textContent = label; }, 4000);
  });

  // Narrow screens: the main navigation folds behind a Menu button (shown by the CSS only
  // when this script runs, so without it the links stay visible).
  document.documentElement.classList.add("js");
  document.addEventListener("click", function (ev) {
    var toggle = ev.target.closest("button.menu-toggle");
    if (!toggle) { return; }
    var header = toggle.closest("header");
    var open = header.classList.toggle("open");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
  });

  // Mappings: Edit fills the "Add or change a mapping" form with the row's mapping.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button.edit-mapping");
    if (!b) { return; }
    var set = function (id, v) { var el = document.getElementById(id); if (el) { el.value = v; } };
    set("m-target", b.getAttribute("data-target"));
    set("m-kind", b.getAttribute("data-kind"));
    set("m-value", b.getAttribute("data-value"));
    set("m-default", b.getAttribute("data-default"));
    set("m-apply", b.getAttribute("data-apply"));
    var form = document.getElementById("mapping-form");
    if (form) { form.scrollIntoView({ block: "start" }); }
    var first = document.getElementById("m-value");
    if (first) { first.focus(); }
  });

  // Add token: a preset sets the scopes and the expiry; changing one of them makes it Custom.
  var presets = {
    idp: { "scope-users": "rw", "scope-groups": "rw", "scope-bulk": "rw", "scope-events": "none", "token-expires": "never" },
    read: { "scope-users": "r", "scope-groups": "r", "scope-bulk": "none", "scope-events": "none", "token-expires": "365d" },
    events: { "scope-users": "none", "scope-groups": "none", "scope-bulk": "none", "scope-events": "r", "token-expires": "never" }
  };
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.id === "token-preset") {
      var p = presets[el.value];
      if (!p) { return; }
      Object.keys(p).forEach(function (id) {
        var field = document.getElementById(id);
        if (field) { field.value = p[id]; }
      });
    } else if (el.closest && el.closest("#add-token form") && el.id !== "token-name") {
      var preset = document.getElementById("token-preset");
      if (preset && el.tagName === "SELECT") { preset.value = "custom"; }
    }
  });

  // Narrow screens show each table row as a stack of cells: each cell is labelled with its
  // column's header (data-label, read by the CSS), on load and after every htmx swap.
  function labelCells(root) {
    var tables = (root.querySelectorAll ? root : document).querySelectorAll("table");
    Array.prototype.forEach.call(tables, function (table) {
      var heads = table.querySelectorAll("thead th");
      if (!heads.length) { return; }
      var names = Array.prototype.map.call(heads, function (th) { return th.textContent.trim(); });
      Array.prototype.forEach.call(table.querySelectorAll("tbody tr"), function (tr) {
        Array.prototype.forEach.call(tr.children, function (cell, i) {
          if (names[i] && !cell.hasAttribute("data-label")) { cell.setAttribute("data-label", names[i]); }
        });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { labelCells(document); });
  document.addEventListener("htmx:afterSettle", function (ev) { labelCells(document); });

  document.addEventListener("submit", function (ev) {
    var button = ev.submitter || ev.target.querySelector("button[data-confirm]");
    var message = button && button.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
    }
  }, true);
})();
