"Offline folium maps of a real scene result, loaded in headless Chromium with the network cut off: no request leaves the page, the layers are there."
import json, re, subprocess
from pathlib import Path
import numpy as np
import pytest, rasterio, torch
import torch.nn.functional as F
from rsworkbench.core import data_dir, RSWError
from rsworkbench.scene import run_scene

pytest.importorskip('offlinefolium', reason='folium-offline is not installed')
from rsworkbench.maps import scene_map, save_map, external_resources

CHROMIUM = Path('/usr/bin/chromium')
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason='Debian chromium is not installed (apt-get install chromium)')
LOCAL = ('data:', 'file:', 'blob:', 'about:', 'chrome:', 'chrome-extension:')

class Interp:
    scale = 2
    def upscale(self, x): return F.interpolate(x, scale_factor=2, mode='bicubic', align_corners=False).clamp(-1, 1)

@pytest.fixture(scope='module')
def result(tmp_path_factory):
    "The bundled Landsat scene and its 2x COG made by run_scene."
    d = tmp_path_factory.mktemp('maps')
    lr = data_dir()/'landsat_rgb_byte.tif'
    run_scene(lr, d/'sr.tif', Interp(), scale=2, tile=256, overlap=32, progress=False)
    return lr, d/'sr.tif'

def chromium(page:Path, tmp:Path):
    "Load `page` headless with every host unresolvable; (DOM after 5 s virtual time, page-initiated request URLs, console errors)."
    net = tmp/f'{page.stem}.netlog.json'
    cmd = [str(CHROMIUM), '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--host-resolver-rules=MAP * ~NOTFOUND', f'--user-data-dir={tmp/"profile"}',
           f'--log-net-log={net}', '--enable-logging=stderr', '--v=0', '--virtual-time-budget=5000', '--dump-dom', page.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    log = json.loads(net.read_text())
    start = log['constants']['logEventTypes']['URL_REQUEST_START_JOB']
    # requests the browser makes for itself (updates, accounts) have no origin; the page's come from its file:// (opaque, 'null') origin
    reqs = [e['params']['url'] for e in log['events'] if e['type'] == start and 'url' in e.get('params', {})
            and e['params'].get('initiator') != 'not an origin']
    errors = [l for l in p.stderr.splitlines() if 'CONSOLE' in l and ('Uncaught' in l or 'Error' in l)]
    return p.stdout, [u for u in reqs if not u.startswith(LOCAL)], errors

def test_page_is_self_contained(result, tmp_path):
    page = save_map(scene_map(*result, max_side=512), tmp_path/'map.html')
    html = page.read_text()
    assert external_resources(html) == []
    assert not re.search(r'<(script|link|img)[^>]+(src|href)\s*=\s*["\']?(https?:)?//', html)
    for cdn in ('cdn.jsdelivr.net', 'cdnjs.cloudflare.com', 'unpkg.com', 'code.jquery.com', 'bootstrapcdn'):
        assert not re.search(rf'(src|href)\s*=\s*["\'][^"\']*{cdn}', html), cdn
    assert html.count('data:image/png;base64,') >= 2 and not list(tmp_path.glob('.*.part'))  # written atomically, nothing left over

@needs_chromium
def test_offline_page_loads_in_chromium(result, tmp_path):
    page = save_map(scene_map(*result, max_side=512), tmp_path/'map.html')
    dom, reqs, errors = chromium(page, tmp_path)
    assert reqs == [] and errors == [], (reqs, errors)
    assert 'leaflet-map-pane' in dom and 'leaflet-control-layers' in dom and 'leaflet-control-scale' in dom
    for name, size in (('lr', '791 x 718 px'), ('sr', '1582 x 1436 px')):
        assert re.search(rf'class="leaflet-pane leaflet-rsw-{name}-pane"[^>]*>\s*<img[^>]*leaflet-image-layer', dom), name  # the overlay in its pane
        assert f'{name.upper()} {size}' in dom  # and in the layer control
    assert len(re.findall(r'<img[^>]*src="data:image/png;base64,', dom)) == 2
    assert 'rsw-compare' in dom and 'rsw-opacity' in dom and 'rsw-swipe' in dom and 'rsw-divider' in dom
    assert re.search(r'leaflet-rsw-sr-pane"[^>]*clip: rect\(', dom) or re.search(r'style="[^"]*clip: rect\([^"]*"[^>]*leaflet-rsw-sr-pane', dom)  # the swipe ran

@needs_chromium
def test_chromium_check_catches_cdn_pages(result, tmp_path):
    "Control: a plain folium page (CDN assets) is caught by the same check, so the check can fail."
    import folium
    page = tmp_path/'online.html'
    folium.Map(tiles=None).save(str(page))
    dom, reqs, errors = chromium(page, tmp_path)
    assert any('leaflet' in u for u in reqs), reqs
    assert 'leaflet-map-pane' not in dom  # without its CDN, Leaflet never ran
    with pytest.raises(RSWError, match='would load'): save_map(folium.Map(tiles=None), tmp_path/'x.html')
    assert not (tmp_path/'x.html').exists()

def test_bad_input(result, tmp_path):
    lr, sr = result
    nocrs = tmp_path/'nocrs.tif'
    with rasterio.open(nocrs, 'w', driver='GTiff', width=8, height=8, count=3, dtype='uint8') as d: d.write(np.ones((3, 8, 8), np.uint8))
    with pytest.raises(RSWError, match='no CRS'): scene_map(nocrs, sr)
    with pytest.raises(RSWError, match='not found'): scene_map(tmp_path/'nope.tif', sr)
    with pytest.raises(RSWError, match='do not overlap'): scene_map(lr, data_dir()/'demo_naip_rgb.tif')
    with pytest.raises(RSWError, match='out of range'): scene_map(lr, sr, bands=[4, 3, 2])
