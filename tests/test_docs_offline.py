"""The offline docs site from file:// (scripts/docs_offline.py), on a small smalldocs site opened from disk in headless
Chromium with no network (the full site is checked by test_docs.py, slow):
- search (issue #29 item 7): typing in the search box lists the matching page, on the home page and on a page one folder
  down; the same site without docs_offline.py finds nothing (the browser refuses search.json);
- widgets (item 6): a page whose notebook holds widget state (its outputs turned into view elements as docs_proc.py does)
  renders its widgets with the vendored manager served from site_libs/."""
import importlib.util, json, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pytest
from rsworkbench.core import repo_root
from test_docs import _CDP, _errors   # the offline Chromium (DevTools protocol) client of the docs tests

WORD = 'zanzibarite'

@pytest.fixture(scope='module')
def docs_offline():
    spec = importlib.util.spec_from_file_location('docs_offline', repo_root()/'scripts'/'docs_offline.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _widget_nb():
    "A notebook like the widgets tour after docs_proc.py: a slider above an image, its state saved, the output a view element."
    import io, numpy as np, ipywidgets as W, nbformat
    from PIL import Image
    from ipywidgets.embed import embed_data
    from rsworkbench.export import views_as_html, VIEW_MIME, STATE_MIME
    b = io.BytesIO(); Image.fromarray((np.random.RandomState(0).rand(40, 56, 3) * 255).astype('uint8')).save(b, 'png')
    data = embed_data(views=[W.VBox([W.FloatSlider(0.35, description='tau'), W.Image(value=b.getvalue(), format='png')])])
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('---\ntitle: Tour\n---\n\nWidgets below.'),
        nbformat.v4.new_code_cell('rx.view()', outputs=[nbformat.v4.new_output('display_data', data={VIEW_MIME: data['view_specs'][0], 'text/plain': 'VBox()'})])])
    nb.metadata['widgets'] = {STATE_MIME: data['manager_state']}
    assert views_as_html(nb) == 1
    return nb

def _render(tmp:Path) -> Path:
    "A four-page smalldocs site (home, a page in a subfolder, another page, a widget page), rendered into tmp/site."
    import nbformat
    proj = tmp/'proj'; (proj/'guide').mkdir(parents=True)
    nbformat.write(_widget_nb(), proj/'guide'/'tour.ipynb')
    (proj/'_quarto.yml').write_text('project:\n  type: website\n  output-dir: ../site\nwebsite:\n  title: mini\n'
                                    '  navbar:\n    search: true\n    left: [index.md, guide/deep.md, other.md]\n')
    (proj/'index.md').write_text('---\ntitle: Home\n---\n\n# Home\n\nNothing to see here.\n')
    (proj/'guide'/'deep.md').write_text(f'---\ntitle: Deep page\n---\n\n## Minerals\n\nThe {WORD} sample glows.\n')
    (proj/'other.md').write_text('---\ntitle: Other\n---\n\nPlain words only.\n')
    smalldocs = Path(sys.executable).parent/'smalldocs'
    r = subprocess.run([str(smalldocs), 'render', str(proj)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    site = tmp/'site'
    assert (site/'search.json').is_file() and (site/'guide'/'deep.html').is_file(), sorted(p.name for p in site.rglob('*'))
    return site

@pytest.fixture(scope='module')
def sites(tmp_path_factory, docs_offline):
    tmp = tmp_path_factory.mktemp('search')
    raw = _render(tmp/'raw')
    off = tmp/'off'; shutil.copytree(raw, off)
    docs_offline.main(off, tmp/'raw'/'proj')
    return raw, off

def test_search_js_written(sites):
    raw, off = sites
    js = (off/'search.js').read_text()
    assert js.startswith('window.smalldocsSearchIndex = ') and WORD in js
    index = json.loads(js[len('window.smalldocsSearchIndex = '):].rstrip().rstrip(';'))
    assert index == json.loads((off/'search.json').read_text())
    lib = (off/'site_libs'/'smalldocs.js').read_text()
    assert 'search.js' in lib and 'fetch(offset + "search.json")' not in lib
    assert 'fetch(offset + "search.json")' in (raw/'site_libs'/'smalldocs.js').read_text()   # the package's copy is untouched

def test_changed_smalldocs_is_refused(sites, docs_offline, tmp_path):
    "A smalldocs whose search code reads the index some other way stops the build instead of shipping a dead search box."
    raw, _ = sites
    site = tmp_path/'s'; shutil.copytree(raw, site)
    js = site/'site_libs'/'smalldocs.js'
    js.write_text(js.read_text().replace('fetch(offset + "search.json")', 'fetch(offset + "index.json")'))
    with pytest.raises(SystemExit, match='search.json'): docs_offline.search_script(site)

@pytest.fixture(scope='module')
def browser():
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None: pytest.skip('Debian chromium is not installed (apt-get install chromium); browser checks skipped')
    pytest.importorskip('websocket', reason='websocket-client is not installed: no DevTools client')
    with tempfile.TemporaryDirectory() as profile:
        b = _CDP(exe, profile)
        try: yield b
        finally: b.close()

SEARCH = """(async (q) => {
  const box = [...document.querySelectorAll('.smalldocs-search')].find(b => b.offsetParent !== null) || document.querySelector('.smalldocs-search');
  const input = box.querySelector('input');
  input.focus(); input.value = q; input.dispatchEvent(new Event('input', {bubbles: true}));
  for (let i = 0; i < 50; i++) {
    await new Promise(r => setTimeout(r, 100));
    const res = box.querySelector('.smalldocs-search-results');
    if (res.classList.contains('show')) return [...res.querySelectorAll('a.search-result')].map(a => a.href).concat(
      res.querySelector('.search-none') ? ['<none>'] : []);
  }
  return null;
})(%s)"""

def _search(browser, page, q):
    browser.load(page.as_uri(), settle=0.3)
    r = browser.call('Runtime.evaluate', expression=SEARCH % json.dumps(q), awaitPromise=True, returnByValue=True)
    return r['result'].get('value'), browser.events

@pytest.mark.parametrize('where', ['index.html', 'guide/deep.html'])
def test_search_from_file_url(sites, browser, where):
    _, off = sites
    hits, events = _search(browser, off/where, WORD)
    assert hits and hits[0].startswith('file://') and hits[0].split('#')[0].endswith('/guide/deep.html'), hits
    assert _errors(events) == [], _errors(events)

def test_without_offline_script_search_finds_nothing(sites, browser):
    "The failure this fixes: on file:// the browser blocks fetch('search.json'), so smalldocs' search finds nothing."
    raw, _ = sites
    hits, _ = _search(browser, raw/'index.html', WORD)
    assert hits == ['<none>'], hits

def test_widget_page(sites, browser):
    raw, off = sites
    page = (off/'guide'/'tour.html').read_text()
    assert '<script src="../site_libs/html-manager/embed.js"></script>' in page and 'widget-state+json' in page
    assert (off/'site_libs'/'html-manager'/'embed.js').stat().st_size > 1_000_000
    assert 'html-manager' not in (off/'index.html').read_text()           # pages without widgets are left alone
    events = browser.load((off/'guide'/'tour.html').as_uri(), settle=0.5)
    deadline, r = time.time() + 30, None
    while time.time() < deadline:
        r = browser.eval("""[...document.querySelectorAll('main img, #quarto-content img, img')].filter(i => i.complete && i.naturalWidth > 0)
                             .map(i => [i.naturalWidth, i.naturalHeight]).concat([[document.querySelectorAll('.widget-slider, .widget-hslider').length]])""")
        if [56, 40] in r: break
        time.sleep(0.3)
    assert [56, 40] in r and r[-1][0] >= 1, r
    assert _errors(events + browser.events) == [], _errors(events + browser.events)
