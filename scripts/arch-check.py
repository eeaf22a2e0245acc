#!/usr/bin/env python3
"""docs/architecture.md names every module of every crate: each source file's module name
(a file's stem, a directory's name for mod.rs) appears in the crate's section, as `name`,
`parent::name`, `name.rs` or `name/`. Prints what is missing; exits 1 if anything is.
"""
import os, re, sys

doc = open('docs/architecture.md').read()
sections = {}
for m in re.finditer(r'^## (\S+)\n(.*?)(?=^## |\Z)', doc, re.S | re.M):
    sections[m.group(1)] = m.group(2)
missing = []
for crate in sorted(os.listdir('crates')):
    src = os.path.join('crates', crate, 'src')
    if not os.path.isdir(src):
        continue
    text = sections.get(crate, '')
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith('.rs') or f in ('lib.rs', 'main.rs', 'tests.rs'):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == 'mod':
                rel = rel[:-1]
            name = rel[-1]
            if not re.search(r'[`:/ ]' + re.escape(name) + r'([`:/.,) ]|$)', text, re.M):
                missing.append(f"{crate}: {'/'.join(rel)}")
for m in missing:
    print('not in docs/architecture.md:', m)
print(f"{len(missing)} module(s) missing from docs/architecture.md")
sys.exit(1 if missing else 0)
