#!/usr/bin/env python
"""Split notebook cells that mix top-level imports with other code (nbdev's docs processing runs every cell holding
an import, so such a cell fails there when its other code needs earlier cells). Usage: split_imports.py NB [NB ...]"""
import json, re, sys
from pathlib import Path

IMP = re.compile(r'^(import \S|from \S+ import )')

def split(nb_path):
    nb, changed, cells = json.loads(Path(nb_path).read_text()), 0, []
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] != 'code' or src.lstrip().startswith('#|'): cells.append(c); continue
        lines = src.splitlines()
        imps = [l for l in lines if IMP.match(l) and not l.rstrip().endswith(('(', '\\', ','))]
        rest = [l for l in lines if l not in imps]
        if not imps or not any(l.strip() and not l.strip().startswith('#') for l in rest): cells.append(c); continue
        mk = lambda ls: [l + '\n' for l in ls[:-1]] + [ls[-1]]
        cells.append(dict(cell_type='code', execution_count=None, metadata={}, outputs=[], source=mk(imps)))
        c = dict(c); c['source'] = mk(rest); cells.append(c); changed += 1
    nb['cells'] = cells
    Path(nb_path).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')
    return changed

if __name__ == '__main__':
    for p in sys.argv[1:]: print(p, split(p))
