"""The README's JupyterLab screenshot (nbs/images/jupyterlab_widgets_tour.png): JupyterLab on loopback (own config and
settings dirs, news off), a copy of the widgets tour opened in headless Chromium (Playwright, /usr/bin/chromium), Run All
Cells, the first explorer view scrolled into place, a 1400x1000 screenshot saved as a 256-colour PNG.

Usage: .venv/bin/python scripts/jupyterlab_screenshot.py [OUT.png]"""
import os, secrets, socket, subprocess, sys, time, tempfile, urllib.request
from pathlib import Path
from playwright.sync_api import sync_playwright
root = Path(__file__).resolve().parents[1]
out = Path(sys.argv[1]) if len(sys.argv) > 1 else root/'nbs'/'images'/'jupyterlab_widgets_tour.png'
with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
token, home = secrets.token_hex(16), Path(tempfile.mkdtemp())
env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home/'config'), JUPYTER_RUNTIME_DIR=str(home/'runtime'), IPYTHONDIR=str(home/'ipython'),
           JUPYTER_PLATFORM_DIRS='1', HF_HUB_OFFLINE='1', JUPYTERLAB_SETTINGS_DIR=str(home/'lab-settings')); env.pop('MPLBACKEND', None)
(home/'lab-settings'/'@jupyterlab'/'apputils-extension').mkdir(parents=True)
(home/'lab-settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings').write_text('{"fetchNews": "false"}')
# workspace copy of the notebook so the checkout is not touched by saving
work = home/'work'; work.mkdir(); (work/'widgets_tour.ipynb').write_bytes((root/'nbs/tutorials/widgets_tour.ipynb').read_bytes())
log = open(home/'lab.log', 'w')
proc = subprocess.Popen([str(root/'.venv/bin/python'), '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
    f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={work}', '--LabApp.news_url=', '--allow-root',
    '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate'], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=work, start_new_session=True)
try:
    for _ in range(200):
        try: urllib.request.urlopen(f'http://127.0.0.1:{port}/api?token={token}', timeout=2); break
        except OSError: time.sleep(0.3)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path='/usr/bin/chromium', args=['--no-sandbox', '--disable-gpu', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'])
        pg = b.new_page(viewport={'width': 1400, 'height': 1000})
        pg.goto(f'http://127.0.0.1:{port}/lab/tree/widgets_tour.ipynb?token={token}&reset')
        pg.wait_for_selector('.jp-Notebook .jp-Cell', timeout=120_000)
        pg.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=120_000)
        pg.click('.jp-Notebook'); time.sleep(1)
        pg.click('text=Run', timeout=10_000); pg.click('text=Run All Cells', timeout=10_000)
        t0 = time.time(); time.sleep(5)
        while time.time() - t0 < 480:
            busy = pg.evaluate("[...document.querySelectorAll('.jp-InputPrompt')].some(e => e.textContent.includes('*'))")
            if not busy: break
            time.sleep(2)
        print('ran in', round(time.time() - t0), 's')
        time.sleep(3)
        views = pg.locator('.jp-OutputArea-output .widget-vbox')
        print('views', views.count(), 'imgs', pg.evaluate("[...document.querySelectorAll('.jp-OutputArea-output img')].filter(i => i.naturalWidth > 0).length"))
        try: pg.click('button:has-text("No")', timeout=3000)
        except Exception: pass
        pg.keyboard.press('Control+b'); time.sleep(1)   # hide the file browser
        pg.evaluate("(() => { const v = [...document.querySelectorAll('.jp-OutputArea-output .widget-vbox')][1]; if (v) { const c = v.closest('.jp-Cell'); (c.previousElementSibling || c).scrollIntoView({block: 'start'}); } })()")
        time.sleep(2)
        pg.screenshot(path=str(home/'shot.png'))
        from PIL import Image
        Image.open(home/'shot.png').convert('RGB').quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
        print('wrote', out)
        b.close()
finally:
    os.killpg(proc.pid, 15); proc.wait(20)
