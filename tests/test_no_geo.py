"""rsworkbench without the geo stack (rasterio/GDAL, rioxarray, pyproj, affine), dask, folium, pyiqa and lpips: the lent GPU's image
lacks them and its 64 MiB upload limit cannot carry rasterio's 39 MB wheel with the repository. Each check runs in a fresh Python
where importing those packages fails as if they were not installed."""
import json, subprocess, sys, textwrap
from pathlib import Path
import numpy as np, pytest
from rsworkbench.core import data_dir
from rsworkbench.data.io import read_raster

ROOT = Path(__file__).resolve().parents[1]
MISSING = ('rasterio', 'rioxarray', 'pyproj', 'affine', 'dask', 'distributed', 'folium', 'pyiqa', 'lpips', 'ipywidgets', 'nbdev')

def _run_without_geo(code: str, tmp_path) -> dict:
    "Run `code` (which sets a dict `out`) in a Python without the packages of MISSING; return `out`."
    head = f"import sys, json\nfor n in {MISSING!r}: sys.modules[n] = None\n"   # `import n` fails; importlib.util.find_spec(n) is None
    tail = f"\nopen({str(tmp_path/'out.json')!r}, 'w').write(json.dumps(out))\n"
    r = subprocess.run([sys.executable, '-c', head + textwrap.dedent(code) + tail], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads((tmp_path/'out.json').read_text())

def test_modules_import_without_geo(tmp_path):
    out = _run_without_geo("""
        import importlib, pkgutil, rsworkbench
        from rsworkbench.data.io import HAVE_GEO
        bad = {}
        for m in pkgutil.walk_packages(rsworkbench.__path__, 'rsworkbench.'):
            try: importlib.import_module(m.name)
            except Exception as e: bad[m.name] = f'{type(e).__name__}: {e}'
        out = dict(bad=bad, have_geo=HAVE_GEO)
    """, tmp_path)
    assert out['have_geo'] is False
    assert set(out['bad']) == {'rsworkbench.maps'}, out['bad']   # folium web maps of georeferenced rasters: the one module that needs the geo stack

def test_read_train_and_sr_without_geo(tmp_path):
    demo, mask = data_dir()/'demo_naip_rgb.tif', data_dir()/'whu_building_1_label.tif'
    ref, ref_mask = read_raster(demo), read_raster(mask)
    out = _run_without_geo(f"""
        import numpy as np, torch
        from rsworkbench.core import RSWError
        from rsworkbench.data.io import read_raster, write_image
        from rsworkbench.data.datasets import bundled_images
        from rsworkbench.models.train import PatchSampler
        from rsworkbench.registry import get_method
        from rsworkbench.scene import run_scene
        from rsworkbench.cli import main
        torch.set_num_threads(1)
        da, m = read_raster({str(demo)!r}), read_raster({str(mask)!r})
        out = dict(shape=list(da.shape), dtype=str(da.dtype), sum=int(da.values.astype(np.int64).sum()), crs=da.attrs['crs'],
                   mask_sum=int(m.values.sum()), mask_dtype=str(m.dtype))
        write_image({str(tmp_path/'a.png')!r}, da.values); out['png_roundtrip'] = bool(np.array_equal(read_raster({str(tmp_path/'a.png')!r}).values, da.values))
        errs = []
        for f in (lambda: write_image({str(tmp_path/'a.tif')!r}, da.values), lambda: run_scene({str(demo)!r}, {str(tmp_path/'s.tif')!r})):
            try: f(); errs.append(None)
            except RSWError as e: errs.append(str(e))
        out['errors'] = errs
        s = PatchSampler(bundled_images(), patch=64, scale=4); lr, hr = s.batch(2)
        out['batch'] = [list(lr.shape), list(hr.shape)]
        x = torch.from_numpy(da.values[:, :32, :32]).float()[None] / 127.5 - 1
        out['sr'] = list(get_method('residual-cnn', 4).upscale(x).shape)
        out['cli'] = main(['sr', {str(tmp_path/'a.png')!r}, {str(tmp_path/'sr.png')!r}, '--method', 'bicubic', '--scale', '2'])
        out['cli_shape'] = list(read_raster({str(tmp_path/'sr.png')!r}).shape)
    """, tmp_path)
    assert out['shape'] == list(ref.shape) and out['dtype'] == str(ref.dtype) and out['crs'] is None
    assert out['sum'] == int(ref.values.astype(np.int64).sum())                       # the same pixels as GDAL reads
    assert out['mask_dtype'] == str(ref_mask.dtype) and out['mask_sum'] == int(ref_mask.values.sum())   # CCITT, 1-bit, MinIsWhite
    assert out['png_roundtrip']
    assert all(e is not None and 'needs rasterio' in e for e in out['errors']), out['errors']
    assert out['batch'] == [[2, 3, 16, 16], [2, 3, 64, 64]] and out['sr'] == [1, 3, 128, 128]
    assert out['cli'] == 0 and out['cli_shape'] == [3, 2 * ref.shape[1], 2 * ref.shape[2]]

def test_gpu_session_script_is_consistent():
    "scripts/gpu_session.sh parses, and the tests, templates and CLI commands it names exist (it runs on a device nobody can debug)."
    import re
    from rsworkbench.cli import find_template
    sh = (ROOT/'scripts'/'gpu_session.sh').read_text()
    assert subprocess.run(['bash', '-n', str(ROOT/'scripts'/'gpu_session.sh')]).returncode == 0
    tests = set(re.findall(r'tests/test_\w+\.py', sh)); assert len(tests) >= 4
    assert all((ROOT/t).exists() for t in tests), tests
    for t, name in re.findall(r'--deselect (tests/test_\w+\.py)::(\w+)', sh): assert f'def {name}(' in (ROOT/t).read_text()
    assert find_template('20_train_sr_baseline').exists()
    for cmd in ('train', 'bench'): assert f'"${{RSW[@]}}" {cmd} ' in sh
