#!/usr/bin/env python
"""Author notebooks as percent-format Python and back (a tiny jupytext stand-in for contributors).

    python scripts/nbpy.py py2nb SRC.py nbs/NAME.ipynb   # write the notebook (then run nbdev_clean)
    python scripts/nbpy.py nb2py nbs/NAME.ipynb SRC.py   # recover an editable source from a notebook

Cells are separated by `# %%` lines; `# %% [markdown]` starts a markdown cell whose lines carry a
leading `# `; `# %% tags=["parameters"]` gives a code cell papermill tags.
"""
import json, re, sys
from pathlib import Path

def py2nb(src, dst):
    cells, cur = [], None
    for line in Path(src).read_text().splitlines():
        m = re.match(r'^# %%(.*)$', line)
        if m:
            if cur: cells.append(cur)
            rest = m.group(1).strip()
            md = rest.startswith('[markdown]')
            tags = re.search(r'tags=(\[.*?\])', rest)
            cur = dict(md=md, tags=json.loads(tags.group(1)) if tags else [], lines=[])
            continue
        if cur is None: cur = dict(md=False, tags=[], lines=[])
        if cur['md']: line = line[2:] if line.startswith('# ') else ('' if line.strip() == '#' else line)
        cur['lines'].append(line)
    if cur: cells.append(cur)
    out = []
    for c in cells:
        lines = c['lines']
        while lines and not lines[-1].strip(): lines.pop()
        while lines and not lines[0].strip(): lines.pop(0)
        if not lines: continue
        src_ = [l + '\n' for l in lines[:-1]] + [lines[-1]]
        meta = {'tags': c['tags']} if c['tags'] else {}
        if c['md']: out.append(dict(cell_type='markdown', metadata=meta, source=src_))
        else: out.append(dict(cell_type='code', execution_count=None, metadata=meta, outputs=[], source=src_))
    nb = dict(cells=out, metadata=dict(kernelspec=dict(display_name='python3', language='python', name='python3')),
              nbformat=4, nbformat_minor=4)
    Path(dst).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n')

def nb2py(nb, dst):
    parts = []
    for c in json.loads(Path(nb).read_text())['cells']:
        s = ''.join(c['source'])
        tags = c.get('metadata', {}).get('tags')
        t = f' tags={json.dumps(tags)}' if tags else ''
        if c['cell_type'] == 'markdown':
            parts.append(f'# %% [markdown]{t}\n' + '\n'.join(('# ' + l) if l else '#' for l in s.splitlines()))
        else: parts.append(f'# %%{t}\n' + s)
    Path(dst).write_text('\n\n'.join(parts) + '\n')

if __name__ == '__main__':
    cmd, a, b = sys.argv[1:4]
    {'py2nb': py2nb, 'nb2py': nb2py}[cmd](a, b)
