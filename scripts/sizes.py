#!/usr/bin/env python3
"""The house limits, measured: files over ~700 lines and functions over ~120 lines in the
crates' sources (tests included). Prints what is over; exits 1 if anything is.

    python3 scripts/sizes.py [--files N] [--fns N]
"""
import os, re, sys

FILE_MAX = 700
FN_MAX = 120

def functions(text):
    """(name, first line, line count) of every fn with a body, by brace matching (strings,
    chars and comments skipped)."""
    out = []
    lines = text.split('\n')
    starts = [m for m in re.finditer(r'(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?(?:const\s+)?(?:unsafe\s+)?fn\s+(\w+)', text)]
    for m in starts:
        i = text.find('{', m.end())
        semi = text.find(';', m.end())
        if i < 0 or (0 <= semi < i):
            continue
        depth, j, n = 0, i, len(text)
        while j < n:
            c = text[j]
            if text.startswith('//', j):
                j = text.find('\n', j)
                if j < 0: break
                continue
            if c == '"':
                j += 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == '\\' else 1
            elif c == "'" and j + 2 < n and (text[j+2] == "'" or (text[j+1] == '\\' and "'" in text[j+2:j+6])):
                j = text.find("'", j + 2)
            elif c == '{':
                depth += 1
            elif c == '}':
                depth -= 1
                if depth == 0:
                    break
            j += 1
        first = text.count('\n', 0, m.start()) + 1
        last = text.count('\n', 0, j) + 1
        out.append((m.group(1), first, last - first + 1))
    return out

def main():
    args = sys.argv[1:]
    fmax = int(args[args.index('--files') + 1]) if '--files' in args else FILE_MAX
    gmax = int(args[args.index('--fns') + 1]) if '--fns' in args else FN_MAX
    bad = 0
    for root, _, files in os.walk('crates'):
        for f in sorted(files):
            if not f.endswith('.rs'):
                continue
            p = os.path.join(root, f)
            text = open(p).read()
            n = text.count('\n')
            if n > fmax:
                print(f"file {p}: {n} lines")
                bad += 1
            for name, line, size in functions(text):
                if size > gmax:
                    print(f"fn {p}:{line} {name}: {size} lines")
                    bad += 1
    print(f"{bad} over the limits (files {fmax}, functions {gmax})")
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main())
