"The offline site's API cross-links point at its own pages (scripts/docs_links.py), on a two-notebook site built by hand."
import importlib.util, json, subprocess, sys
import pytest
from rsworkbench.core import repo_root

BASE = 'https://example.org/proj'

@pytest.fixture(scope='module')
def docs_links():
    spec = importlib.util.spec_from_file_location('docs_links', repo_root()/'scripts'/'docs_links.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _nb(path, front):
    path.parent.mkdir(parents=True, exist_ok=True)
    cells = [{'cell_type': 'raw', 'metadata': {}, 'source': front}, {'cell_type': 'markdown', 'metadata': {}, 'source': '# x'}]
    path.write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))

@pytest.fixture
def site(tmp_path):
    proc, site = tmp_path/'_proc', tmp_path/'site'
    _nb(proc/'21_models.baselines.ipynb', '---\noutput-file: models.baselines.html\ntitle: models.baselines\n---\n\n')
    _nb(proc/'index.ipynb', '---\noutput-file: index.html\ntitle: proj\n---\n')
    _nb(proc/'tutorials'/'tour.ipynb', '---\ntitle: tour\n---\n')   # no output-file: nothing maps to it
    (site/'tutorials').mkdir(parents=True)
    (site/'21_models.baselines.html').write_text(f'<a href="{BASE}/models.baselines.html#rrdbnet">RRDBNet</a>')
    (site/'tutorials'/'tour.html').write_text(
        f'<a href="{BASE}/models.baselines.html#rrdbnet">a</a> <a href="{BASE}/">home</a> <a href="{BASE}/gone.html#x">b</a> '
        f'<a href="https://github.com/x/y/blob/main/m.py#L3">source</a> <code>[`f`]({BASE}/models.baselines.html#f)</code>')
    return proc, site

def test_output_files(docs_links, site):
    proc, _ = site
    assert docs_links.output_files(proc) == {'models.baselines.html': '21_models.baselines.html', 'index.html': 'index.html'}

def test_localize_links(docs_links, site):
    proc, site = site
    assert docs_links.localize_links(site, proc, BASE + '/') == (3, 1)
    assert (site/'21_models.baselines.html').read_text() == '<a href="21_models.baselines.html#rrdbnet">RRDBNet</a>'
    tour = (site/'tutorials'/'tour.html').read_text()
    assert 'href="../21_models.baselines.html#rrdbnet"' in tour and 'href="../index.html"' in tour
    assert f'href="{BASE}/gone.html#x"' in tour                         # unknown page: left as it was, and counted
    assert 'href="https://github.com/x/y/blob/main/m.py#L3"' in tour    # other sites untouched
    assert f'({BASE}/models.baselines.html#f)' in tour                  # text inside code is not a link
    assert docs_links.localize_links(site, proc, BASE) == (0, 1)        # idempotent

def test_cli(site):
    proc, site = site
    r = subprocess.run([sys.executable, str(repo_root()/'scripts'/'docs_links.py'), str(proc), str(site), BASE], capture_output=True, text=True)
    assert r.returncode == 0 and '3 pointed at local pages, 1 to unknown pages' in r.stdout, r.stdout + r.stderr
