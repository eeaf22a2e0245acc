// A SCIMMY (npm) service provider with an in-memory store, as a third-party target for the
// provisioning engine's tests. Usage: node host.cjs PORT TOKEN
const express = require("express");
const SCIMMY = require("scimmy").default ?? require("scimmy");
const SCIMMYRouters = require("scimmy-routers").default ?? require("scimmy-routers");
const crypto = require("node:crypto");
const [port, token] = process.argv.slice(2);
const stores = { User: new Map(), Group: new Map() };
function declare(Type, unique) {
  const store = stores[Type === SCIMMY.Resources.User ? "User" : "Group"];
  SCIMMY.Resources.declare(Type)
    .ingress((resource, instance) => {
      const id = resource.id ?? crypto.randomUUID();
      if (resource.id && !store.has(id)) throw new SCIMMY.Types.Error(404, null, `${id} not found`);
      for (const [other, o] of store) {
        if (other !== id && String(o[unique]).toLowerCase() === String(instance[unique]).toLowerCase())
          throw new SCIMMY.Types.Error(409, "uniqueness", `${unique} already in use`);
      }
      const now = new Date();
      const old = store.get(id);
      const stored = { ...JSON.parse(JSON.stringify(instance)), id,
        meta: { created: old?.meta?.created ?? now, lastModified: now } };
      store.set(id, stored);
      return stored;
    })
    .egress((resource) => {
      if (resource.id) {
        const found = store.get(resource.id);
        if (!found) throw new SCIMMY.Types.Error(404, null, `${resource.id} not found`);
        return found;
      }
      const all = [...store.values()];
      return resource.filter ? resource.filter.match(all) : all;
    })
    .degress((resource) => {
      if (!store.delete(resource.id)) throw new SCIMMY.Types.Error(404, null, `${resource.id} not found`);
    });
}
declare(SCIMMY.Resources.User, "userName");
declare(SCIMMY.Resources.Group, "displayName");
const app = express();
app.use("/scim", new SCIMMYRouters({
  type: "bearer",
  handler: (req) => {
    if (req.header("Authorization") !== `Bearer ${token}`) throw new Error("Authorization failed");
    return "engine";
  },
}));
app.listen(Number(port), "127.0.0.1", () => console.log(`listening on ${port}`));
