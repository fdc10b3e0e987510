"`rsw scene --method bicubic` on the CPU: numpy and GDAL only (no torch, xarray or dask), the torch method's output."
import json, subprocess, sys
import numpy as np
import pytest, rasterio, torch
from rasterio.windows import Window
from rsworkbench.scene import run_scene
from rsworkbench.srio import BicubicUpscaler, cubic_upsample

FAST = dict(scale=2, tile=128, overlap=16, progress=False)

class TorchBicubic:
    "The registered bicubic method's torch path alone (no `upscale_array`): the scene runs it as it ran before."
    def __init__(self, scale): self.scale, self.up = scale, BicubicUpscaler(scale)
    def upscale(self, x): return self.up.upscale(x)

def crop(src_path, dst, row, col, h, w, bands=None, **over):
    "A georeferenced crop of a real raster."
    with rasterio.open(src_path) as s:
        win = Window(col, row, w, h)
        a = s.read(bands, window=win)
        prof = dict(s.profile, width=w, height=h, count=len(a), transform=s.window_transform(win), tiled=False, **over)
        for k in ('blockxsize', 'blockysize'): prof.pop(k, None)
    with rasterio.open(dst, 'w', **prof) as d: d.write(a)
    return dst

def pixels(p):
    with rasterio.open(p) as d: return d.read(), d.profile

@pytest.fixture
def rgb(shared): return shared/'rasterio'/'RGB.byte.tif'

def test_fresh_process_loads_no_torch(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 260)  # several windows and the nodata corner
    code = ("import json, sys; from rsworkbench.scene import run_scene; "
            f"r = run_scene({str(src)!r}, {str(tmp_path/'o.tif')!r}, 'bicubic', 2, tile=128, overlap=16, "
            "progress=False); print(json.dumps(dict(windows=r['windows'], heavy=sorted(m for m in ('torch', 'xarray', "
            "'rioxarray', 'dask', 'pandas', 'tqdm') if m in sys.modules))))")
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r['windows'] > 1 and r['heavy'] == []
    run_scene(src, tmp_path/'torch.tif', TorchBicubic(2), **FAST)
    a, b = pixels(tmp_path/'o.tif')[0], pixels(tmp_path/'torch.tif')[0]
    assert np.abs(a.astype(int) - b).max() <= 1 and (a != b).mean() < 1e-2  # float32 rounding flips a few levels

@pytest.mark.parametrize('scale,bands,nodata_hole', [(2, None, True), (3, None, False), (4, [1], True)])
def test_equals_torch_bicubic_scene(rgb, tmp_path, scale, bands, nodata_hole):
    "Tile edges, scene borders, nodata (the footprint's corner and a hole), 1 and 3 bands, several scales."
    src = crop(rgb, tmp_path/'in.tif', 0, 20, 230, 250, bands=bands)
    if nodata_hole:
        with rasterio.open(src, 'r+') as d:
            a = d.read(); a[:, 100:112, 60:75] = 0; d.write(a)
    kw = dict(FAST, scale=scale, tile=96)
    s = run_scene(src, tmp_path/'np.tif', 'bicubic', **kw)
    run_scene(src, tmp_path/'torch.tif', TorchBicubic(scale), **kw)
    (a, pa), (b, pb) = pixels(tmp_path/'np.tif'), pixels(tmp_path/'torch.tif')
    assert s['windows'] > 4 and pa['transform'] == pb['transform'] and pa['nodata'] == pb['nodata'] == 0
    assert a.shape == (len(bands or [1, 2, 3]), 230 * scale, 250 * scale)
    assert np.array_equal(a == 0, b == 0)  # the same nodata pixels
    assert np.abs(a.astype(int) - b).max() <= 1 and (a != b).mean() < 1e-2  # float32 rounding flips a few levels

def test_cubic_upsample_equals_torch_on_real_tiles(rgb):
    "Real image tiles in model range, borders included: numpy and torch bicubic agree to float32 rounding."
    with rasterio.open(rgb) as d: a = d.read(window=Window(300, 200, 64, 48)).astype(np.float32) / 127.5 - 1
    x = torch.from_numpy(a)[None]
    for s in (2, 3, 4, 8):
        ref = BicubicUpscaler(s).upscale(x)[0].numpy()
        np.testing.assert_allclose(BicubicUpscaler(s).upscale_array(a), ref, atol=1e-5, rtol=0)
        np.testing.assert_allclose(cubic_upsample(a, s)[:, :s, :s], torch.nn.functional.interpolate(
            x, scale_factor=s, mode='bicubic', align_corners=False)[0, :, :s, :s].numpy(), atol=1e-5, rtol=0)

def test_resume_byte_identical_numpy_path(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 260)
    ref = run_scene(src, tmp_path/'ref.tif', 'bicubic', **FAST)
    class Stop(Exception): pass
    def hook(n, win):
        if n >= 3: raise Stop
    out = tmp_path/'out.tif'
    with pytest.raises(Stop): run_scene(src, out, 'bicubic', on_window=hook, **FAST)
    assert not out.exists() and (tmp_path/'out.partial.tif').exists()
    s = run_scene(src, out, 'bicubic', **FAST)
    assert 3 <= s['windows_resumed'] < ref['windows'] and s['windows_recomputed'] > 0
    assert np.array_equal(pixels(tmp_path/'ref.tif')[0], pixels(out)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif', 'out.tif', 'ref.tif']  # no partial, sidecar or .ovr
