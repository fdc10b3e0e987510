"Whole-scene SR on real GeoTIFFs: georeferencing, nodata, resume byte-identical, tiling equals untiled, seams, OOM back-off, bad input."
import errno, json, os, time
from pathlib import Path
import numpy as np
import pytest, rasterio, torch
import torch.nn.functional as F
from rasterio.windows import Window
from rsworkbench.core import RSWError
from rsworkbench.scene import (run_scene, tiled_upscale, plan_windows, blend_weights, SceneJob,
                               _to_model, _from_model)

FAST = dict(scale=2, tile=128, overlap=16, progress=False)

class Interp:
    "A deterministic local test upscaler (registry 'bicubic' may not exist yet)."
    def __init__(self, scale=2, mode='bicubic', oom=0): self.scale, self.mode, self.oom, self.calls = scale, mode, oom, []
    def upscale(self, x):
        self.calls.append(len(x))
        if self.oom and len(x) > 1: self.oom -= 1; raise torch.cuda.OutOfMemoryError('CUDA out of memory (fake)')
        kw = {} if self.mode == 'nearest' else dict(align_corners=False)
        return F.interpolate(x, scale_factor=self.scale, mode=self.mode, **kw).clamp(-1, 1)

@pytest.fixture(autouse=True, scope='module')
def one_thread():
    "Tiny tensors: OpenMP threads only add contention on a shared CPU."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

@pytest.fixture
def rgb(shared): return shared/'rasterio'/'RGB.byte.tif'

@pytest.fixture
def pan(shared): return shared/'spacenet_solaris'/'atlanta_pan'/'sample_geotiff.tif'

def crop(src_path, dst, row, col, h, w, **over):
    "Write a georeferenced crop of a real raster."
    with rasterio.open(src_path) as s:
        win = Window(col, row, w, h)
        prof = dict(s.profile, width=w, height=h, transform=s.window_transform(win), tiled=False, **over)
        for k in ('blockxsize', 'blockysize'): prof.pop(k, None)
        a = s.read(window=win)
    with rasterio.open(dst, 'w', **prof) as d: d.write(a)
    return dst

def read(p):
    with rasterio.open(p) as d: return d.read(), d.profile, d.bounds, d.res, d.overviews(1)

def test_georef_nodata_cog(rgb, tmp_path):
    out = tmp_path/'rgb_x2.tif'
    s = run_scene(rgb, out, Interp(2), **FAST)
    b, prof, bounds, res, ovr = read(out)
    with rasterio.open(rgb) as src: a, sprof, sb, sres = src.read(), src.profile, src.bounds, src.res
    assert prof['crs'] == sprof['crs'] and prof['nodata'] == 0 and prof['dtype'] == 'uint8'
    np.testing.assert_allclose(tuple(bounds), tuple(sb), atol=1e-6)
    np.testing.assert_allclose(res, np.array(sres) / 2)
    assert b.shape == (3, a.shape[1] * 2, a.shape[2] * 2)
    m_in = (a == 0).all(0).repeat(2, 0).repeat(2, 1)
    assert ((b == 0).all(0) == m_in).all()  # nodata in <=> nodata out (valid pixels are never nodata)
    assert prof['tiled'] and prof['compress'] == 'deflate' and len(ovr) >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['rgb_x2.tif']  # partial files gone
    assert s['windows_done'] == s['windows'] == len(plan_windows(718, 791, 128, 16))
    assert s['input_mpx'] == pytest.approx(791 * 718 / 1e6) and s['output_mpx'] == pytest.approx(4 * s['input_mpx'])
    assert s['peak_rss_mb'] > 0 and s['output_mpx_per_s'] > 0

def test_resume_byte_identical(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 260)  # includes the nodata corner of the rotated footprint
    ref = run_scene(src, tmp_path/'ref.tif', Interp(2), **FAST)
    class Stop(Exception): pass
    def hook(n, win):
        if n >= 3: raise Stop
    out = tmp_path/'out.tif'
    with pytest.raises(Stop): run_scene(src, out, Interp(2), batch=2, on_window=hook, **FAST)
    assert not out.exists() and (tmp_path/'out.partial.tif').exists()
    done = json.loads((tmp_path/'out.partial.json').read_text())['done']
    assert 3 <= len(done) < ref['windows']
    s = run_scene(src, out, Interp(2), batch=2, **FAST)
    assert s['windows_resumed'] == len(done) and s['windows_done'] == ref['windows'] - len(done) and s['windows_recomputed'] > 0
    a, b = read(tmp_path/'ref.tif')[0], read(out)[0]
    assert a.dtype == b.dtype and np.array_equal(a, b)

def test_resume_false_restarts(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 140, 150)
    def hook(n, win): raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): run_scene(src, tmp_path/'o.tif', Interp(2), on_window=hook, **FAST)
    s = run_scene(src, tmp_path/'o.tif', Interp(2), resume=False, **FAST)
    assert s['windows_resumed'] == 0 and s['windows_done'] == s['windows']

def test_one_tile_equals_untiled(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 100, 120)
    run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)  # 100x120 < tile 128: one window
    with rasterio.open(src) as d: a = d.read()
    lo, hi = np.zeros(3), np.full(3, 255.)
    x, m = _to_model(a, lo, hi, 0)
    ref = _from_model(Interp(2).upscale(torch.from_numpy(x)[None])[0], lo, hi, 'uint8', 0, m.repeat(2, 0).repeat(2, 1))
    assert np.array_equal(read(tmp_path/'o.tif')[0], ref)
    y = torch.rand(1, 3, 40, 56) * 2 - 1
    torch.testing.assert_close(tiled_upscale(y, Interp(2), tile=64, overlap=16), Interp(2).upscale(y), atol=1e-5, rtol=0)

def seam_ratio(out, seams_x, seams_y):
    "Mean gradient magnitude on seam lines over the mean everywhere."
    gx, gy = (out[..., 1:] - out[..., :-1]).abs(), (out[..., 1:, :] - out[..., :-1, :]).abs()
    on = torch.cat([gx[..., [x - 1 for x in seams_x]].flatten(), gy[..., [y - 1 for y in seams_y], :].flatten()])
    return float(on.mean() / torch.cat([gx.flatten(), gy.flatten()]).mean())

def test_no_seams_bicubic_real(pan):
    with rasterio.open(pan) as d: a = d.read(1, window=Window(300, 300, 256, 256)).astype(np.float32)
    x = torch.from_numpy((a - a.min()) / (a.max() - a.min()) * 2 - 1)[None, None].repeat(1, 3, 1, 1)
    up, tile, ov = Interp(2), 64, 16
    out = tiled_upscale(x, up, tile=tile, overlap=ov)
    offs = sorted({w.col_off for w in plan_windows(256, 256, tile, ov)})
    seams = sorted({o * 2 for o in offs[1:]} | {(o + tile) * 2 for o in offs[:-1]})  # tile starts and ends in the output
    r = seam_ratio(out, seams, seams)
    hard = torch.cat([torch.cat([up.upscale(x[..., i:i + tile, j:j + tile]) for j in range(0, 256, tile)], -1)
                      for i in range(0, 256, tile)], -2)  # abutting tiles, no blending
    r_hard = seam_ratio(hard, list(range(128, 512, 128)), list(range(128, 512, 128)))
    assert r < 1.1 and r_hard > r, (r, r_hard)
    assert (out - up.upscale(x)).abs().max() < 0.02

def test_uint16_pan_stretch(pan, tmp_path):
    src = crop(pan, tmp_path/'pan.tif', 100, 100, 150, 170)
    s = run_scene(src, tmp_path/'o.tif', Interp(2, 'nearest'), **FAST)
    b, prof, *_ = read(tmp_path/'o.tif')
    with rasterio.open(src) as d: a = d.read()
    assert b.shape == (1, 300, 340) and prof['dtype'] == 'uint16' and prof['nodata'] == 0
    rep = a.repeat(2, 1).repeat(2, 2).astype(float)
    lo, hi = np.percentile(a[a > 0], [0.5, 99.5])
    inside = (rep >= lo) & (rep <= hi)
    assert np.abs(b[inside] - rep[inside]).max() <= 1  # 1 band -> RGB -> averaged back, stretched and restored
    assert s['windows'] == 4

def test_small_and_non_multiple(rgb, tmp_path):
    small = crop(rgb, tmp_path/'small.tif', 200, 200, 37, 53)
    s = run_scene(small, tmp_path/'s.tif', Interp(2), **FAST)
    assert s['windows'] == 1 and read(tmp_path/'s.tif')[0].shape == (3, 74, 106)
    odd = crop(rgb, tmp_path/'odd.tif', 150, 120, 157, 203)
    s = run_scene(odd, tmp_path/'odd_x2.tif', Interp(2, 'nearest'), scale=2, tile=64, overlap=8, progress=False)
    b = read(tmp_path/'odd_x2.tif')[0]
    with rasterio.open(odd) as d: a = d.read()
    rep = a.repeat(2, 1).repeat(2, 2)
    ok = (rep > 0).all(0)
    assert b.shape == (3, 314, 406) and s['windows'] == len(plan_windows(157, 203, 64, 8)) == 12 and np.array_equal(b[:, ok], rep[:, ok])

def test_oom_halves_batch(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 150, 220)
    ref = run_scene(src, tmp_path/'ref.tif', Interp(2), batch=4, **FAST)
    up = Interp(2, oom=1)
    s = run_scene(src, tmp_path/'o.tif', up, batch=4, **FAST)
    assert s['batch_halvings'] == 1 and s['final_batch'] == 2 and max(up.calls[1:]) == 2 and ref['batch_halvings'] == 0
    assert np.array_equal(read(tmp_path/'ref.tif')[0], read(tmp_path/'o.tif')[0])

def test_registered_bicubic(rgb, tmp_path):
    from rsworkbench.registry import list_methods
    if 'bicubic' not in list_methods(): pytest.skip("'bicubic' not registered yet (models.baselines)")
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 60, 70)
    s = run_scene(src, tmp_path/'o.tif', 'bicubic', **FAST)
    assert read(tmp_path/'o.tif')[0].shape == (3, 120, 140)

def test_bad_input(rgb, tmp_path):
    with pytest.raises(RSWError, match='not found'): run_scene(tmp_path/'nope.tif', tmp_path/'o.tif', Interp(2), **FAST)
    (tmp_path/'junk.tif').write_text('not a raster')
    with pytest.raises(RSWError, match='cannot read'): run_scene(tmp_path/'junk.tif', tmp_path/'o.tif', Interp(2), **FAST)
    with pytest.raises(RSWError, match='out of range'): run_scene(rgb, tmp_path/'o.tif', Interp(2), bands=[3, 2, 4], **FAST)
    four = tmp_path/'four.tif'
    with rasterio.open(four, 'w', driver='GTiff', width=20, height=20, count=4, dtype='uint8') as d: d.write(np.ones((4, 20, 20), np.uint8))
    with pytest.raises(RSWError, match='has 4 bands'): run_scene(four, tmp_path/'o.tif', Interp(2), **FAST)
    run_scene(four, tmp_path/'o4.tif', Interp(2), bands=[4, 3, 2], **FAST)  # band selection makes it valid
    (tmp_path/'afile').write_text('x')
    with pytest.raises(RSWError, match='output folder'): run_scene(rgb, tmp_path/'afile'/'o.tif', Interp(2), **FAST)
    with pytest.raises(RSWError, match='overwrite the input'): run_scene(rgb, rgb, Interp(2), **FAST)
    with pytest.raises(RSWError, match='overlap'): run_scene(rgb, tmp_path/'o.tif', Interp(2), scale=2, tile=16, overlap=16, progress=False)
    with pytest.raises(RSWError, match='unknown stretch'): run_scene(four, tmp_path/'o.tif', Interp(2), bands=[1, 2, 3], stretch='bogus', **FAST)
    assert not (tmp_path/'o.tif').exists()

def test_nan_float_and_no_crs(tmp_path):
    a = np.random.default_rng(0).random((3, 40, 50)).astype(np.float32); a[:, 5:9, 10:20] = np.nan
    p = tmp_path/'f.tif'
    with rasterio.open(p, 'w', driver='GTiff', width=50, height=40, count=3, dtype='float32') as d: d.write(a)
    with pytest.warns(UserWarning, match='no CRS'): run_scene(p, tmp_path/'o.tif', Interp(2), **FAST)
    b, prof, *_ = read(tmp_path/'o.tif')
    assert prof['crs'] is None and np.isnan(prof['nodata'])
    nan_in = np.isnan(a).any(0).repeat(2, 0).repeat(2, 1)
    assert (np.isnan(b).all(0) == nan_in).all()  # NaNs masked in and restored out, no black tiles
    assert np.isfinite(b[:, ~nan_in]).all()

@pytest.mark.slow
def test_dask_two_workers_same_output(rgb, tmp_path):
    from rsworkbench.registry import list_methods
    if 'bicubic' not in list_methods(): pytest.skip("'bicubic' not registered yet (models.baselines)")
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 260, 300)
    one = run_scene(src, tmp_path/'one.tif', 'bicubic', batch=2, **FAST)
    two = run_scene(src, tmp_path/'two.tif', 'bicubic', batch=2, workers=2, **FAST)
    assert two['workers'] == 2 and two['windows_done'] == one['windows_done']
    assert np.array_equal(read(tmp_path/'one.tif')[0], read(tmp_path/'two.tif')[0])

def test_output_not_writable(rgb, tmp_path):
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 40, 50)
    if Path('/proc').is_dir():  # writable for no one, root included (os.access would say yes to root)
        with pytest.raises(RSWError, match='not writable'): run_scene(src, '/proc/o.tif', Interp(2), **FAST)
        with pytest.raises(RSWError, match='cannot create the output folder'): run_scene(src, '/proc/rsw/o.tif', Interp(2), **FAST)
    if os.geteuid() != 0:
        ro = tmp_path/'ro'; ro.mkdir(); ro.chmod(0o500)
        try:
            with pytest.raises(RSWError, match='not writable'): run_scene(src, ro/'o.tif', Interp(2), **FAST)
        finally: ro.chmod(0o700)

def enospc(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')

def test_disk_full_while_writing_removes_partial(rgb, tmp_path, monkeypatch):
    "A failing window write (what GDAL raises on ENOSPC, checked on a real 3 MB tmpfs by hand) -> clear error, no partial files."
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 260)
    import rsworkbench.scene as sc
    real, n = sc._from_model, []
    def flaky(*a, **k):
        n.append(1)
        if len(n) > 3: enospc()
        return real(*a, **k)
    monkeypatch.setattr(sc, '_from_model', flaky)
    with pytest.raises(RSWError, match='disk full') as e: run_scene(src, tmp_path/'o.tif', Interp(2), batch=2, **FAST)
    assert 'partial output was removed' in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif']
    monkeypatch.setattr(sc, '_from_model', real)
    real_w, m = sc.atomic_write_text, []
    def sidecar(p, t):
        m.append(1)
        if len(m) == 3: enospc()  # the initial sidecar and one batch went through
        real_w(p, t)
    monkeypatch.setattr(sc, 'atomic_write_text', sidecar)
    with pytest.raises(RSWError, match='disk full'): run_scene(src, tmp_path/'o.tif', Interp(2), batch=2, **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif']

def test_disk_full_in_cog_step_keeps_windows_and_resumes(rgb, tmp_path, monkeypatch):
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 260)
    run_scene(src, tmp_path/'ref.tif', Interp(2), **FAST)
    import rsworkbench.scene as sc
    real = sc._finalize
    def full(partial, out):
        with sc.atomic_path(out) as tmp: tmp.write_bytes(b'half a COG'); enospc()
    monkeypatch.setattr(sc, '_finalize', full)
    with pytest.raises(RSWError, match='disk full') as e: run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert 'run the same command again' in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif', 'o.partial.json', 'o.partial.tif', 'ref.tif']  # no o.tif, no temp file
    monkeypatch.setattr(sc, '_finalize', real)
    s = run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert s['windows_done'] == 0 and s['windows_resumed'] == s['windows']  # only the COG step was redone
    assert np.array_equal(read(tmp_path/'ref.tif')[0], read(tmp_path/'o.tif')[0])

def test_synthetic_scene_bounded_and_real(tmp_path):
    from rsworkbench.scene import synthetic_scene, BENCH_SOURCE
    from rsworkbench.core import data_dir
    p = synthetic_scene(tmp_path/'s.tif', 3000, 2100, strip=128)
    with rasterio.open(p) as d, rasterio.open(data_dir()/BENCH_SOURCE) as s:
        assert d.shape == (3000, 2100) and d.crs == s.crs and d.res == s.res and d.profile['tiled']
        a, b = d.read(window=Window(0, 0, 934, 723)), s.read([1, 2, 3])
        assert np.array_equal(a, b)  # real imagery, not noise
        c = d.read(window=Window(934, 723, 934, 723))
        assert np.array_equal(c, b[:, ::-1, ::-1])  # mirrored repeats: no seams

@pytest.mark.slow
def test_scene_benchmark_small(tmp_path):
    from rsworkbench.scene import scene_row
    from rsworkbench.registry import list_methods
    if 'bicubic' not in list_methods(): pytest.skip("'bicubic' not registered")
    r = scene_row('bicubic', 2, size=(300, 420), workdir=tmp_path, tile=128, overlap=16)
    assert r['kind'] == 'scene' and r['windows'] == 12 and r['output_mpx'] == pytest.approx(4 * 0.3 * 0.42)
    assert 0 < r['peak_rss_mb'] < 4096 and r['input_mpx_per_s'] > 0 and r['output_mb'] > 0 and r['cog']
    assert sorted(p.name for p in tmp_path.iterdir()) == ['synthetic_300x420.tif']  # output removed, scene cached
    with pytest.raises(RSWError, match='registered method name'): scene_row(Interp(2), 2, size=64, workdir=tmp_path)
    with pytest.raises(RSWError, match='GiB free'): scene_row('bicubic', 4, size=10**7, workdir=tmp_path)

@pytest.mark.filterwarnings('ignore:.*RANDOM weights')
@pytest.mark.parametrize('method,opts', [('slim-student', {}), ('texadiff', dict(num_inference_steps=2)), ('slim-teacher', {})])
def test_diffusion_methods_tile_inside_windows(rgb, tmp_path, method, opts):
    "A diffusion method in a scene job, with its window tiled in latent space and decoded in tiles, via `options`."
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 40, 48)              # one 40x48 window -> 160x192 output, 20x24 latents at x8
    job = dict(scale=4, tile=64, overlap=8, progress=False)
    whole = run_scene(src, tmp_path/'whole.tif', method, options=opts, **job)
    tiled = run_scene(src, tmp_path/'tiled.tif', method, options=dict(opts, latent_tile=8, latent_overlap=4), **job)
    assert whole['windows'] == tiled['windows'] == 1
    a, pa, ba = read(tmp_path/'whole.tif')[:3]
    b, pb, bb = read(tmp_path/'tiled.tif')[:3]
    assert a.shape == b.shape == (3, 160, 192) and pa['crs'] == pb['crs'] and tuple(ba) == tuple(bb)
    assert not np.array_equal(a, b)                                  # the option reached the method: it ran tiled
    one = run_scene(src, tmp_path/'one.tif', method, options=dict(opts, latent_tile=128), **job)  # 128 latents cover the window at x8 (20x24) and x2 (80x96, the shipped student)
    assert np.array_equal(read(tmp_path/'one.tif')[0], a)           # a latent tile covering the window is the untiled run
    with pytest.raises(RSWError, match='multiples of 2'):
        run_scene(src, tmp_path/'bad.tif', method, options=dict(opts, latent_tile=7), **job)
    assert not (tmp_path/'bad.tif').exists()

def test_options_need_a_method_name(rgb, tmp_path):
    with pytest.raises(RSWError, match='options apply to a method given by name'):
        run_scene(rgb, tmp_path/'o.tif', Interp(2), options=dict(latent_tile=8), **FAST)

# --- issue #30: radiometry, nodata, one writer, leftovers, corrupt partial, all-nodata ---

def test_scene_keeps_16bit_radiometry_like_sr(pan, tmp_path):
    "SpaceNet pan (uint16, ~69..2233): scene keeps the input's range (it used to clip to the 0.5-99.5 percentiles), matches `rsw sr`, records the stretch."
    from rsworkbench.cli import sr_raster
    src = crop(pan, tmp_path/'pan.tif', 0, 0, 160, 200)
    with rasterio.open(src) as d: a = d.read(); nd = d.nodata
    v = a[a != nd] if nd is not None else a
    run_scene(src, tmp_path/'scene.tif', Interp(2), **FAST)
    sr_raster(src, tmp_path/'sr.tif', upscaler=Interp(2), device='cpu')
    b, prof = read(tmp_path/'scene.tif')[:2]
    c = read(tmp_path/'sr.tif')[0]
    bv = b[b != nd] if nd is not None else b
    assert bv.min() <= v.min() + 2 and bv.max() >= v.max() - 2, (v.min(), v.max(), bv.min(), bv.max())  # full range kept
    assert np.abs(b.astype(int) - c.astype(int)).max() <= 1    # the same mapping in sr and scene
    for p in ('scene.tif', 'sr.tif'):
        with rasterio.open(tmp_path/p) as d: t = d.tags()
        assert t['RSW_STRETCH'] == 'auto' and t['RSW_STRETCH_CLIPS'].startswith('no'), t
    run_scene(src, tmp_path/'clip.tif', Interp(2), stretch=(2, 98), **FAST)      # an explicit clipping stretch: said so in the tags
    with rasterio.open(tmp_path/'clip.tif') as d: t, m = d.tags(), d.read().max()
    assert t['RSW_STRETCH'] == 'percentiles 2,98' and t['RSW_STRETCH_CLIPS'].startswith('yes') and m < v.max()

def test_scene_float_keeps_range(tmp_path):
    "Float reflectance with outliers comes back in its own range, outliers included."
    rng = np.random.default_rng(0)
    a = rng.normal(0.2, 0.02, (1, 64, 80)).astype(np.float32); a[0, 5, 5], a[0, 40, 60] = -0.5, 3.0
    prof = dict(driver='GTiff', width=80, height=64, count=1, dtype='float32', crs='EPSG:32618', transform=rasterio.transform.from_origin(0, 0, 1, 1))
    with rasterio.open(tmp_path/'f.tif', 'w', **prof) as d: d.write(a)
    run_scene(tmp_path/'f.tif', tmp_path/'o.tif', Interp(2, 'nearest'), **FAST)
    b = read(tmp_path/'o.tif')[0]
    np.testing.assert_allclose(b, a.repeat(2, 1).repeat(2, 2), atol=1e-5)   # nearest is exact: outliers kept, not clipped

def test_scene_refuses_all_nodata(tmp_path):
    prof = dict(driver='GTiff', width=32, height=32, count=1, dtype='uint16', nodata=0, crs='EPSG:32618', transform=rasterio.transform.from_origin(0, 0, 1, 1))
    with rasterio.open(tmp_path/'z.tif', 'w', **prof) as d: d.write(np.zeros((1, 32, 32), np.uint16))
    with pytest.raises(RSWError, match='no valid pixel'): run_scene(tmp_path/'z.tif', tmp_path/'o.tif', Interp(2), **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['z.tif']

def test_second_writer_refused_stale_lock_taken_over(rgb, tmp_path):
    from rsworkbench.data.io import output_lock
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 100, 120)
    with output_lock(tmp_path/'o.tif'):        # a live writer holds the output
        with pytest.raises(RSWError, match=f'being written by another process \\(pid {os.getpid()}'):
            run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
        assert not (tmp_path/'o.partial.tif').exists()      # the refused writer touched nothing
    (tmp_path/'o.tif.lock').write_text(json.dumps(dict(pid=2**22 + 4321, host='elsewhere', started='yesterday')))  # left by a killed writer
    with pytest.warns(UserWarning, match='stale lock'): run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif', 'o.tif']

@pytest.mark.slow
def test_two_scene_processes_one_output(rgb, tmp_path):
    "Two real `rsw scene` processes on one output: one finishes, the other is refused cleanly (it used to crash or delete the shared partial)."
    import subprocess, sys
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 400, 500)
    cmd = [str(Path(sys.executable).parent/'rsw'), 'scene', str(src), str(tmp_path/'o.tif'), '--scale', '2', '--tile', '64', '--overlap', '8']
    env = dict(os.environ, OMP_NUM_THREADS='1')
    ps = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    res = [(p.wait(timeout=600), p.stderr.read()) for p in ps]
    rcs = sorted(r for r, _ in res); print("exit statuses", rcs)
    assert rcs == [0, 2] or rcs == [0, 0], res          # never a crash; both 0 only if they did not overlap in time
    if rcs == [0, 2]: assert 'being written by another process' in [e for r, e in res if r == 2][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif', 'o.tif']
    run_scene(src, tmp_path/'ref.tif', 'bicubic', scale=2, tile=64, overlap=8, progress=False)
    assert np.array_equal(read(tmp_path/'o.tif')[0], read(tmp_path/'ref.tif')[0])

def test_leftover_temporaries_cleaned(rgb, tmp_path):
    "A kill during the COG copy leaves hidden .part / .ovr.tmp files; the next run removes them."
    src = crop(rgb, tmp_path/'in.tif', 300, 300, 100, 120)
    for n in ('.o.k3j_x9az.tif.part', '.o.k3j_x9az.tif.part.ovr.tmp', '.o.partial.ab12cd34.json.part', '.o.partial.ab12cd34.tif.part'):
        (tmp_path/n).write_bytes(b'left by a killed run')
    run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['in.tif', 'o.tif']

def test_corrupt_partial_detected_and_windows_redone(rgb, tmp_path):
    "A corrupted OUTPUT.partial.tif is detected on resume, said so, its bad windows recomputed: the result equals a clean run (it used to fail with 'Is the disk full?' on every rerun)."
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 360)
    run_scene(src, tmp_path/'ref.tif', Interp(2), **FAST)
    n = []
    def hook(k, win):
        n.append(k)
        if len(n) == 5: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): run_scene(src, tmp_path/'o.tif', Interp(2), on_window=hook, batch=1, **FAST)
    part = tmp_path/'o.partial.tif'
    import tifffile
    with tifffile.TiffFile(part) as tf: offs, cnts = tf.pages[0].dataoffsets, tf.pages[0].databytecounts
    k = int(np.argmax(cnts)); o, c = offs[k], cnts[k]       # the largest live tile: garbage in its deflate stream
    raw = bytearray(part.read_bytes()); raw[o + 8:o + c - 8] = np.random.default_rng(0).integers(0, 256, c - 16, dtype=np.uint8).tobytes()
    part.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match='is corrupt'): s = run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert s['windows_resumed'] < 5 <= s['windows'] and s['windows_done'] > s['windows'] - 5
    assert np.array_equal(read(tmp_path/'o.tif')[0], read(tmp_path/'ref.tif')[0])

def test_write_error_not_called_disk_full(rgb, tmp_path, monkeypatch):
    "A write error with space left does not ask 'Is the disk full?'."
    import rsworkbench.scene as sc
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 260)
    def broken(*a, **k): raise OSError(errno.EIO, 'Input/output error')
    monkeypatch.setattr(sc, '_from_model', broken)
    with pytest.raises(RSWError) as e: run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert 'disk full' not in str(e.value) and 'run the same command again' in str(e.value).lower()

def test_partial_is_checked_by_checksum(rgb, tmp_path):
    "The partial file is uncompressed (fast window writes): a finished window whose bytes changed on disk (no codec error to catch it) is found by its CRC-32 and redone."
    import json, rasterio
    src = crop(rgb, tmp_path/'in.tif', 0, 0, 300, 360)
    run_scene(src, tmp_path/'ref.tif', Interp(2), **FAST)
    n = []
    def hook(k, win):
        n.append(k)
        if len(n) == 5: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): run_scene(src, tmp_path/'o.tif', Interp(2), on_window=hook, batch=1, **FAST)
    part = tmp_path/'o.partial.tif'
    with rasterio.open(part) as d: assert d.compression is None
    assert len(json.loads((tmp_path/'o.partial.json').read_text())['crc']) == 5
    with rasterio.open(part, 'r+') as d:   # valid pixels, wrong values
        d.write(np.full((3, 4, 4), 7, np.uint8), window=rasterio.windows.Window(10, 10, 4, 4))
    with pytest.warns(UserWarning, match='is corrupt'): s = run_scene(src, tmp_path/'o.tif', Interp(2), **FAST)
    assert s['windows_resumed'] == 4
    assert np.array_equal(read(tmp_path/'o.tif')[0], read(tmp_path/'ref.tif')[0])

def test_benchmark_rss_is_the_childs_own(tmp_path):
    "Peak RSS of a benchmark child is its own (VmHWM), not the parent's peak that ru_maxrss carries across fork + exec (the GDAL reference read 1177 MB, its own 190 MB)."
    from rsworkbench.scene import gdal_benchmark
    ballast = bytearray(1500 * 2**20)    # the parent holds 1.5 GB
    ballast[::4096] = b'\1' * len(ballast[::4096])
    g = gdal_benchmark(64, 2, workdir=tmp_path)
    assert 0 < g['peak_rss_mb'] < 1000 and g['wall_s'] > 0 and g['name'] == 'gdal-cubic x2 (reference)'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['synthetic_64x64.tif']   # the reference output is removed
