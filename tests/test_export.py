"""Offline HTML export (`rsworkbench.export`, issue #29 item 6): a notebook with widgets is run in a fresh kernel, exported as
one HTML file, and opened from file:// in headless Chromium with no network: its widget areas render (images with data,
slider DOM), nothing is requested from the network, and the console stays clean. nbconvert's own HTML of the same
notebook, opened the same way, shows no widget (the failure this fixes)."""
import re, subprocess, sys, tempfile, time
from pathlib import Path
import pytest
import nbformat
from rsworkbench.core import repo_root
from rsworkbench.export import export_html, external_resources, widget_state, widget_views, VIEW_MIME, STATE_MIME
from test_docs import _CDP, _errors   # the offline Chromium (DevTools protocol) client of the docs tests

CELLS = [
    "import io, numpy as np, ipywidgets as W\nfrom PIL import Image\nfrom IPython.display import display\n"
    "def png(seed):\n    b = io.BytesIO()\n"
    "    Image.fromarray((np.random.RandomState(seed).rand(48, 64, 3) * 255).astype('uint8')).save(b, 'png')\n"
    "    return b.getvalue()",
    "box = W.VBox([W.FloatSlider(0.35, min=0, max=1, description='tau'), W.Image(value=png(0), format='png')])\nbox",
    "out = W.Output()\nwith out: display(Image.open(io.BytesIO(png(1))))\nout",
    "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0]); plt.show()",   # drawn inline although pytest sets MPLBACKEND=Agg
]

@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    d = tmp_path_factory.mktemp('export')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in CELLS],
                                  metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}})
    nbformat.write(nb, d/'w.ipynb')
    out = export_html(d/'w.ipynb', d/'w.html', timeout=120)   # runs it in a fresh kernel, then exports
    return d, out

@pytest.mark.slow
def test_export_is_self_contained(exported):
    d, out = exported
    html = out.read_text()
    assert external_resources(html) == []
    assert html.count(f'<script type="{VIEW_MIME}">') == 2 and html.count(f'<script type="{STATE_MIME}">') == 1
    assert 'data-rsw="html-manager' in html and 'unpkg.com' not in html and 'require.min.js' not in html
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) >= 1   # the matplotlib figure, inline
    assert 'widget-state' not in (d/'w.ipynb').read_text()                 # the source notebook is left as it was

@pytest.mark.slow
def test_cli_no_execute_needs_state(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x', outputs=[nbformat.v4.new_output(
        'display_data', data={VIEW_MIME: {'model_id': 'abc', 'version_major': 2, 'version_minor': 0}, 'text/plain': 'IntSlider()'})])])
    nbformat.write(nb, tmp_path/'s.ipynb')
    r = subprocess.run([sys.executable, '-m', 'rsworkbench.export', str(tmp_path/'s.ipynb'), '--no-execute'],
                       capture_output=True, text=True, timeout=120, cwd=repo_root())
    assert r.returncode != 0 and 'no saved widget state' in r.stderr and 'Save Widget State' in r.stderr, r.stderr
    assert not (tmp_path/'s.html').exists()

@pytest.fixture(scope='module')
def browser():
    import shutil
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None: pytest.skip('Debian chromium is not installed (apt-get install chromium); browser checks skipped')
    pytest.importorskip('websocket', reason='websocket-client is not installed: no DevTools client')
    with tempfile.TemporaryDirectory() as profile:
        b = _CDP(exe, profile)
        b.call('Network.enable')
        try: yield b
        finally: b.close()

RENDERED = """(() => {
  const imgs = [...document.querySelectorAll('.jupyter-widgets img, .widget-image')].filter(i => i.tagName === 'IMG');
  return {imgs: imgs.length, drawn: imgs.filter(i => i.complete && i.naturalWidth > 0).map(i => [i.naturalWidth, i.naturalHeight, i.src.slice(0, 5)]),
          sliders: document.querySelectorAll('.widget-slider, .widget-hslider').length,
          widgets: document.querySelectorAll('.jupyter-widgets .lm-Widget, .jupyter-widgets .widget-vbox, .jupyter-widgets .widget-output').length};
})()"""

def _wait_rendered(browser, want_imgs, timeout=30):
    deadline, r = time.time() + timeout, None
    while time.time() < deadline:
        r = browser.eval(RENDERED)
        if len(r['drawn']) >= want_imgs: return r
        time.sleep(0.3)
    return r

def _network(events):
    return [e['params']['request']['url'] for e in events if e.get('method') == 'Network.requestWillBeSent'
            and not e['params']['request']['url'].startswith(('file:', 'data:', 'blob:'))]

@pytest.mark.slow
def test_widgets_render_offline_in_chromium(exported, browser):
    d, out = exported
    events = browser.load(out.as_uri(), settle=1.0)
    r = _wait_rendered(browser, 2)
    events += browser.events
    assert len(r['drawn']) >= 2, r                       # the Image widget and the image inside the Output widget
    assert (64, 48) in [tuple(x[:2]) for x in r['drawn']], r
    assert r['sliders'] >= 1 and r['widgets'] >= 2, r
    assert _network(events) == [], _network(events)
    assert _errors(events) == [], _errors(events)

def _executed_copy(out):
    "The executed notebook behind an export, rebuilt from its page (views and state), without running a kernel again."
    import json, html as H
    text = out.read_text()
    views = [json.loads(v) for v in re.findall(r'<script type="' + re.escape(VIEW_MIME) + r'">\s*(.*?)\s*</script>', text, re.S)]
    state = json.loads(re.search(r'<script type="' + re.escape(STATE_MIME) + r'">\s*(.*?)\s*</script>', text, re.S).group(1).replace('<\\/', '</'))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('w', outputs=[nbformat.v4.new_output(
        'display_data', data={VIEW_MIME: v, 'text/plain': 'Widget()'})]) for v in views])
    nb.metadata['widgets'] = {STATE_MIME: state}
    return nb

@pytest.mark.slow
def test_plain_nbconvert_shows_no_widgets_offline(exported, browser):
    "The failure this fixes: nbconvert's HTML loads the manager from a CDN, so offline the widget areas stay empty."
    from nbconvert import HTMLExporter
    d, out = exported
    nb = _executed_copy(out)
    assert widget_state(nb) and len(widget_views(nb)) == 2
    html, _ = HTMLExporter(template_name='lab').from_notebook_node(nb)
    (d/'plain.html').write_text(html)
    browser.load((d/'plain.html').as_uri(), settle=1.0)
    r = _wait_rendered(browser, 1, timeout=5)
    assert r['drawn'] == [] and r['sliders'] == 0, r
