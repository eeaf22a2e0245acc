#!/usr/bin/env python3
"""Import circles between a crate's files: `use crate::a::b`, `crate::a::b::x` paths and
`super::` (resolved to the module's file) are edges; the crate root (lib.rs, main.rs) is the
hub of declarations and re-exports and is left out. Prints each circle (strongly connected
component of more than one file) and exits 1 if there is one.

    python3 scripts/import-cycles.py [crates/NAME ...]
"""
import os, re, sys

def modules(src):
    """module path (tuple) -> file"""
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'):
                continue
            p = os.path.join(root, f)
            rel = os.path.relpath(p, src)[:-3].split(os.sep)
            if rel[-1] == 'mod':
                rel = rel[:-1]
            if rel in (['lib'], ['main']):
                rel = []
            out[tuple(rel)] = p
    return out

def strip_tests(text):
    # drop `#[cfg(test)] mod x { ... }` bodies (tests may import anything)
    i = text.find('#[cfg(test)]')
    return text if i < 0 else text[:i]

def edges(mods):
    g = {m: set() for m in mods}
    for m, path in mods.items():
        text = strip_tests(open(path).read())
        text = re.sub(r'//[^\n]*', '', text)
        # `use crate::{a, b::c}`: each item as its own path
        text = re.sub(r'\b(crate|super(?:::super)*)::\{([^{}]*)\}',
                      lambda mm: ' '.join(f"{mm.group(1)}::{i.strip()}" for i in mm.group(2).split(',') if i.strip()),
                      text)
        # expand `use crate::a::{b, c::d}` one level
        for mm in re.finditer(r'\b(crate|super(?:::super)*)::([A-Za-z_][\w:]*)(::\{([^}]*)\})?', text):
            base, path_, _, group = mm.group(1), mm.group(2), mm.group(3), mm.group(4)
            parts = path_.split('::')
            if base == 'crate':
                prefix = ()
            else:
                ups = base.count('super')
                here = m if not path.endswith('mod.rs') and m else m
                # a file `a/b.rs` is module (a,b); its super is (a,)
                prefix = here[:len(here) - ups] if len(here) >= ups else ()
            cands = [prefix + tuple(parts)]
            if group:
                for item in group.split(','):
                    item = item.strip().split(' as ')[0].strip()
                    if item and item != 'self':
                        cands.append(prefix + tuple(parts) + tuple(item.split('::')))
            for c in cands:
                # the longest prefix that is a module file
                for k in range(len(c), 0, -1):
                    if c[:k] in mods:
                        t = c[:k]
                        if t != m and t != ():
                            g[m].add(t)
                        break
    return g

def sccs(g):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1:
                out.append(comp)
    for v in list(g):
        if v not in index:
            visit(v)
    return out

def main():
    crates = sys.argv[1:] or sorted(os.path.join('crates', c) for c in os.listdir('crates'))
    bad = 0
    for c in crates:
        src = os.path.join(c, 'src')
        if not os.path.isdir(src):
            continue
        mods = modules(src)
        mods.pop((), None)
        for comp in sccs(edges(mods)):
            bad += 1
            print(f"{os.path.basename(c)}: " + " <-> ".join("::".join(x) for x in sorted(comp)))
    print(f"{bad} import circle(s)")
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main())
