"The documentation site builds offline (scripts/docs.sh: nbdev processing + smalldocs) and renders in a real browser."
import shutil, subprocess
from pathlib import Path
import pytest
from rsworkbench.core import repo_root

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'docs'
    r = subprocess.run(['bash', str(repo_root()/'scripts'/'docs.sh'), str(out)], capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    return out

@pytest.mark.slow
def test_site_pages(site):
    assert (site/'index.html').exists() and (site/'results.html').exists()
    assert (site/'images'/'demo_comparison.png').exists()
    for page, sym in (('io', 'read_raster'), ('degrade', 'Degrader'), ('scene', 'run_scene'), ('cli', 'run_demo')):
        assert sym in (site/'api'/f'{page}.html').read_text(), (page, sym)
    assert 'rsworkbench' in (site/'index.html').read_text()

@pytest.mark.slow
def test_site_renders_in_chromium(site):
    chrome = shutil.which('chromium')
    if chrome is None: pytest.skip('Debian chromium is not installed')
    r = subprocess.run([chrome, '--headless=new', '--no-sandbox', '--disable-gpu', '--dump-dom', '--virtual-time-budget=3000',
                        '--host-resolver-rules=MAP * ~NOTFOUND', (site/'index.html').as_uri()], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '<title>' in r.stdout and 'rsworkbench' in r.stdout
