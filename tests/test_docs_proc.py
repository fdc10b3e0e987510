"""The docs build's notebook half (scripts/docs_proc.py, issue #29 item 8): nbdev's mixed import cells are counted, not
echoed, and one that needs an unrun cell no longer stops the build; smalldocs' per-page notices fold into one line."""
import importlib.util, json, warnings
import pytest
from rsworkbench.core import repo_root

@pytest.fixture(scope='module')
def docs_proc():
    spec = importlib.util.spec_from_file_location('docs_proc', repo_root()/'scripts'/'docs_proc.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _nb(path, cells):
    path.write_text(json.dumps({'cells': [{'cell_type': 'code', 'metadata': {}, 'source': c, 'outputs': [], 'execution_count': None} for c in cells],
                                'metadata': {'kernelspec': {'name': 'python3', 'language': 'python', 'display_name': 'Python 3'}},
                                'nbformat': 4, 'nbformat_minor': 5}))
    return path

CELLS = ['#| export\ndef f(): return 1',
         'x = 41',
         'import math\ny = x + 1\nprint(y)',        # mixed: imports + code needing the unrun cell above (nbdev stops here)
         'import os\nz = math.floor(2.5)\nprint(z)']  # mixed and runnable: nbdev runs it whole, its output kept

def _process(path):
    from nbdev.process import NBProcessor
    from nbdev.processors import add_show_docs, exec_show_docs
    proc = NBProcessor(path, procs=[add_show_docs, exec_show_docs])
    proc.process()
    return proc.nb

def test_mixed_cells_counted_and_survived(docs_proc, tmp_path):
    import nbdev.processors as P
    path = _nb(tmp_path/'m.ipynb', CELLS)
    with warnings.catch_warnings(record=True) as ws:       # nbdev as it is: the whole cell echoed in a warning, then it stops
        warnings.simplefilter('always')
        with pytest.raises(Exception, match='in cell'): _process(path)
    assert any('Found cells containing imports and other code' in str(w.message) and 'y = x + 1' in str(w.message) for w in ws)
    log = docs_proc.Log()
    old = docs_proc.patch_exec_show_docs(log)
    try:
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter('always')
            nb = _process(path)
    finally: P.exec_show_docs.__call__ = old
    assert not [w for w in ws if 'imports and other code' in str(w.message)], [str(w.message) for w in ws]
    assert log.mixed == {'m.ipynb': 2}
    assert [(n, i, f) for n, i, _, f in log.fallback] == [('m.ipynb', 3, 'import math')] and 'NameError' in log.fallback[0][2]  # 3: after nbdev's show_doc cell
    cells = [c for c in nb.cells if c.cell_type == 'code' and not c.source.startswith('show_doc')]
    assert cells[2].get('outputs') == []                                   # the failed run's traceback is not on the page
    assert any('2' in ''.join(o.get('text', '')) for o in cells[3].outputs)  # math came from the fallback's import
    s = docs_proc.summary(log, 1, [])
    assert 'm.ipynb cell 3 ("import math") needs an earlier cell' in s and '2 cells mix imports' in s and 'x + 1' not in s

def test_imports_only(docs_proc):
    assert docs_proc.imports_only('#| hide\nimport os, sys\nfrom a.b import (c,\n  d)\nx = 1\n%time y\nif x:\n    import q') == \
        'import os, sys\nfrom a.b import c, d'
    assert docs_proc.imports_only('def (') == ''

def test_smalldocs_log(docs_proc):
    lines = ['wrote 102 page(s) to /x/_docs'] + [f'warning: {i:02d}_m.ipynb: output-file is not read by smalldocs' for i in range(40)] + \
            ['warning: 00_core.ipynb: broken link /gone.ipynb', 'warning: 01_c.ipynb: search.limit: x is not a number',
             "Skipping publisher trust check for 'a/b' because Hugging Face Hub is in offline mode."]
    out = docs_proc.smalldocs_log(lines).splitlines()
    assert out[0] == 'wrote 102 page(s) to /x/_docs' and len(out) == 4, out
    assert out[1].startswith('smalldocs: 40 pages set output-file')
    assert 'broken link (1 x: 00_core.ipynb -> /gone.ipynb)' in out[2] and 'search.limit: x is not a number' in out[3]

def test_uses_widgets(docs_proc):
    import nbformat
    nb = lambda src: nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(src)])
    assert docs_proc.uses_widgets(nb('from rsworkbench.widgets import RTDMExplorer')) and docs_proc.uses_widgets(nb('cs.view()'))
    assert docs_proc.uses_widgets(nb('import ipywidgets as W')) and not docs_proc.uses_widgets(nb('import torch'))

def test_failing_show_doc_is_a_warning(docs_proc, tmp_path):
    "A symbol nbdev cannot document (its show_doc raises) leaves a note on the page and a summary line; the build goes on."
    import nbdev.processors as P
    path = _nb(tmp_path/'s.ipynb', ['#| export\ndef f(): return 1', 'show_doc(undefined_symbol)', '#| export\ndef g(): return 2'])
    with pytest.raises(Exception, match='in cell'): _process(path)
    log = docs_proc.Log()
    old = docs_proc.patch_exec_show_docs(log)
    try: nb = _process(path)
    finally: P.exec_show_docs.__call__ = old
    assert [(n, s) for n, s, _ in log.showdoc] == [('s.ipynb', 'undefined_symbol')] and 'NameError' in log.showdoc[0][2]
    note = [c for c in nb.cells if 'show_doc(undefined_symbol)' in c.source][0].outputs[0]['data']['text/markdown']
    assert 'could not render the documentation of `undefined_symbol`' in note
    assert 's.ipynb: show_doc(undefined_symbol) failed (NameError' in docs_proc.summary(log, 1, [])
