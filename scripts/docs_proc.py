#!/usr/bin/env python
"""The notebook half of the offline docs build (scripts/docs.sh), with a quiet log.

1. nbdev's processing (nbs/ -> _proc/: show_doc rendered, front matter), without nbdev_proc_nbs' Quarto installer.
   nbdev runs every cell that imports something, to render the API pages, and warns with the whole cell when such a cell
   also holds other code; a cell like that which needs an earlier, unrun cell stops nbdev. Here the warnings are counted
   instead of echoed, a mixed cell that fails is run again as its imports alone (all that the API pages need), and a
   show_doc that nbdev cannot render leaves a note on the page and a warning in the summary instead of stopping the build.
2. The home page and the tutorials are committed without outputs: they are run here so their pages carry their figures.
   Notebooks that use widgets run in a Jupyter kernel (rsworkbench.export.execute_notebook, widget state stored) and their
   widget outputs become the view elements that the vendored widget manager renders on the page (scripts/docs_offline.py);
   the others run in-process (execnb) as before.

Warnings raised while nbdev processes the notebooks are summarised at the end, one line per distinct message.

Usage: python scripts/docs_proc.py                         (from the repository root)
       smalldocs render _proc 2>&1 | python scripts/docs_proc.py smalldocs-log
           (smalldocs' per-page "output-file is not read by smalldocs" lines become one line; other warnings are kept,
           grouped by message)"""
import ast, collections, contextlib, copy, io, os, re, sys, time, warnings
from pathlib import Path

MIXED = 'Found cells containing imports and other code'

def imports_only(src:str) -> str:
    "The top-level import statements of a cell's source (IPython magics and directives dropped), as source."
    lines = [l for l in src.splitlines() if not l.lstrip().startswith(('%', '!', '#|'))]
    try: tree = ast.parse('\n'.join(lines))
    except SyntaxError: return ''
    return '\n'.join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))

class Log:
    "What the processing would have printed, kept for the summary."
    def __init__(self):
        self.mixed = collections.Counter()   # notebook -> mixed cells nbdev ran
        self.fallback = []                   # (notebook, cell index, error, first line) of mixed cells that failed, run as imports only
        self.showdoc = []                    # (notebook, symbol, error) of show_doc cells that failed
        self.warnings = collections.Counter()  # (category, first line) -> count
        self.where = collections.defaultdict(set)

    def warn(self, w, nb):
        msg = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ''
        key = (w.category.__name__, msg[:160]); self.warnings[key] += 1; self.where[key].add(nb)

def patch_exec_show_docs(log:Log):
    "Make nbdev's exec_show_docs count its mixed-cell warnings and survive a mixed cell that needs an unrun cell."
    from fastcore.basics import str2bool
    import nbdev.processors as P
    def __call__(self, cell):
        if not self.nb.has_docs_ or not hasattr(self, 'k'): return
        fm = getattr(self.nb, 'frontmatter_', {})
        if str2bool(fm.get('skip_showdoc', False)): return
        name = Path(getattr(self.nb, 'path_', '') or '?').name
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter('always'); run = P._do_eval(cell)
        mixed = any(MIXED in str(w.message) for w in ws)
        if not run: return
        if mixed: log.mixed[name] += 1
        before = copy.deepcopy(cell.get('outputs'))
        self.k.cell(cell)
        if self.k.exc and mixed:
            err = f'{type(self.k.exc).__name__}: {self.k.exc}'
            self.k.exc = None
            if before is None: cell.pop('outputs', None)
            else: cell['outputs'] = before
            self.k.run(imports_only(cell.source))
            log.fallback.append((name, cell.idx_, err, cell.source.strip().splitlines()[0][:60]))
        if self.k.exc and P._is_showdoc(cell):   # nbdev cannot document this symbol: say so on the page and in the log
            err = f'{type(self.k.exc).__name__}: {self.k.exc}'
            self.k.exc = None
            sym = re.search(r'show_doc\(([^)]*)\)', cell.source)
            sym = sym.group(1) if sym else '?'
            cell['outputs'] = [{'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown':
                f'#### {sym}\n\n*(nbdev could not render the documentation of `{sym}`: {err[:200]})*'}}]
            log.showdoc.append((name, sym, err))
        if self.k.exc:
            title = fm.get('title', '')
            raise Exception(f"Error{' in notebook: ' + title if title else ''} in cell {cell.idx_} :\n{cell.source}") from self.k.exc
    old, P.exec_show_docs.__call__ = P.exec_show_docs.__call__, __call__
    return old   # to undo: P.exec_show_docs.__call__ = old

def uses_widgets(nb) -> bool:
    "Whether a notebook's code uses ipywidgets (directly or through rsworkbench.widgets)."
    src = '\n'.join(c.source for c in nb.cells if c.cell_type == 'code')
    return bool(re.search(r'\bipywidgets\b|rsworkbench\.widgets\b|\.view\(\)', src))

def run_pages(proc:Path, log:Log) -> list:
    "Run _proc/index.ipynb and the tutorials; returns one line per notebook."
    import nbformat
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    from rsworkbench.export import execute_notebook, views_as_html
    done = []
    for p in [proc/'index.ipynb', *sorted((proc/'tutorials').glob('*.ipynb'))]:
        t0, nb = time.time(), nbformat.read(p, as_version=4)
        try:   # the cells' own warnings and stderr stay on the page, as before
            if uses_widgets(nb):
                execute_notebook(nb, cwd=p.parent)
                n = views_as_html(nb); nbformat.write(nb, p); how = f'kernel, {n} widget output(s)'
            else:
                enb, cwd = read_nb(p), os.getcwd()
                try: os.chdir(p.parent); CaptureShell().run_all(enb, exc_stop=True)
                finally: os.chdir(cwd)
                write_nb(enb, p); how = 'in-process'
        except Exception as e:
            raise SystemExit(f'docs: running {p.relative_to(proc)} failed: {e}')
        done.append(f'ran {p.relative_to(proc)} ({how}, {time.time() - t0:.0f} s)')
    return done

def summary(log:Log, n_nbs:int, ran:list) -> str:
    out = [f'docs: processed {n_nbs} notebooks']
    out += [f'docs: {r}' for r in ran]
    if log.mixed:
        per = ', '.join(f'{k} {v}' for k, v in sorted(log.mixed.items()))
        out.append(f'docs: {sum(log.mixed.values())} cells mix imports with other code; nbdev runs them for the API pages ({per})')
    for nb, idx, err, first in log.fallback:
        out.append(f'docs: WARNING {nb} cell {idx} ("{first}") needs an earlier cell that nbdev does not run ({err[:120]}); '
                   'only its imports were run: move the imports into their own cell')
    for nb, sym, err in log.showdoc:
        out.append(f'docs: WARNING {nb}: show_doc({sym}) failed ({err.splitlines()[0][:120]}); the page says so instead of documenting it')
    if log.warnings:
        out.append(f'docs: {sum(log.warnings.values())} warnings while processing the notebooks ({len(log.warnings)} distinct):')
        for (cat, msg), n in log.warnings.most_common(12):
            where = ', '.join(sorted(log.where[(cat, msg)])[:3])
            out.append(f'  {n:4d} x {cat}: {msg}  [{where}{", ..." if len(log.where[(cat, msg)]) > 3 else ""}]')
        if len(log.warnings) > 12: out.append(f'  ... and {len(log.warnings) - 12} more distinct warnings')
    return '\n'.join(out)

def main():
    from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
    from nbdev.serve import proc_nbs
    import nbdev.doclinks
    from nbdev.config import get_config
    cfg, log = get_config(), Log()
    refresh_quarto_yml()                      # nbs/nbdev.yml from settings.ini (our nbs/_quarto.yml is kept)
    nbdev.doclinks._build_modidx()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)  # nbs/sidebar.yml
    patch_exec_show_docs(log)
    out = io.StringIO()
    with warnings.catch_warnings(record=True) as ws, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        warnings.simplefilter('default')
        try: proc_nbs(cfg.nbs_path, n_workers=0)   # processed copies (show_doc rendered) into _proc/
        except BaseException:
            sys.__stderr__.write(out.getvalue()[-5000:]); raise
    for w in ws: log.warn(w, 'nbdev processing')
    proc = Path(cfg.nbs_path).parent/'_proc'
    n = sum(1 for p in proc.rglob('*.ipynb') if '.ipynb_checkpoints' not in p.parts)
    ran = run_pages(proc, log)
    print(summary(log, n, ran))

_OUTPUT_FILE = re.compile(r'^warning: (.+): output-file is not read by smalldocs$')
_WARNING = re.compile(r'^warning: ([^:]+): (.*)$')

def smalldocs_log(lines) -> str:
    "smalldocs' output with its per-page notices folded: output-file (nbdev's name for the Quarto page) counted, other warnings grouped."
    out, n_outfile, groups = [], 0, collections.defaultdict(list)
    for line in lines:
        line = line.rstrip('\n')
        if _OUTPUT_FILE.match(line): n_outfile += 1
        elif 'because Hugging Face Hub is in offline mode' in line: continue   # docs.sh sets HF_HUB_OFFLINE on purpose
        elif (m := _WARNING.match(line)):
            msg = m.group(2)
            if msg.startswith('broken link '): groups['broken link'].append(f'{m.group(1)} -> {msg[12:]}')
            else: groups[msg].append(m.group(1))
        elif line.strip(): out.append(line)
    if n_outfile:
        out.append(f'smalldocs: {n_outfile} pages set output-file (the name nbdev gives the page for Quarto); smalldocs names pages '
                   'after their notebooks and scripts/docs_links.py points the cross-links at them')
    for msg, pages in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        u = sorted(set(pages))
        out.append(f'smalldocs: WARNING {msg} ({len(pages)} x: {", ".join(u[:4])}{", ..." if len(u) > 4 else ""})')
    return '\n'.join(out)

if __name__ == '__main__':
    if sys.argv[1:] == ['smalldocs-log']: print(smalldocs_log(sys.stdin))
    elif sys.argv[1:]: sys.exit(__doc__)
    else: main()
