"The `rsw` command end to end: sr on files and folders, demo, evaluate, and bad input (clear error, non-zero exit, nothing half-written)."
import subprocess, sys, os
from pathlib import Path
import numpy as np, pytest, rasterio
from PIL import Image
from rsworkbench.cli import main
from rsworkbench.core import data_dir
from rsworkbench.data.io import read_raster

DEMO = data_dir()/'demo_naip_rgb.tif'

def _no_partials(d: Path):
    return [p.name for p in Path(d).rglob('*') if '.part' in p.name or 'partial' in p.name]

def test_sr_geotiff_keeps_georeference(tmp_path):
    assert main(['sr', str(DEMO), str(tmp_path/'sr.tif'), '--method', 'bicubic', '--scale', '4']) == 0
    a, b = read_raster(DEMO), read_raster(tmp_path/'sr.tif')
    assert b.attrs['crs'] == a.attrs['crs']
    assert (b.sizes['y'], b.sizes['x']) == (4 * a.sizes['y'], 4 * a.sizes['x'])
    with rasterio.open(DEMO) as s, rasterio.open(tmp_path/'sr.tif') as d:
        assert np.allclose(s.bounds, d.bounds) and np.allclose(np.array(s.res) / 4, d.res)

def test_sr_folder_of_pngs(tmp_path):
    src = tmp_path/'in'; src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2): Image.fromarray(rng.integers(0, 255, (16, 20, 3), dtype=np.uint8)).save(src/f'{i}.png')
    assert main(['sr', str(src), str(tmp_path/'out'), '--scale', '2']) == 0
    outs = sorted((tmp_path/'out').glob('*.png'))
    assert [p.name for p in outs] == ['0.png', '1.png']
    assert Image.open(outs[0]).size == (40, 32)

def test_sr_grey_uint16(tmp_path, shared):
    src = shared/'spacenet_solaris'/'atlanta_pan'/'sample_geotiff.tif'
    with rasterio.open(src) as s:
        prof = s.profile; w = rasterio.windows.Window(0, 0, 40, 30)
        arr = s.read(window=w); prof.update(width=40, height=30, transform=s.window_transform(w))
    with rasterio.open(tmp_path/'pan.tif', 'w', **prof) as d: d.write(arr)
    assert main(['sr', str(tmp_path/'pan.tif'), str(tmp_path/'sr.tif'), '--scale', '2']) == 0
    with rasterio.open(tmp_path/'sr.tif') as d:
        out = d.read(); assert out.dtype == np.uint16 and out.shape == (1, 60, 80)
        assert abs(float(out.mean()) - float(arr.mean())) < 0.02 * float(arr.mean())

def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    # missing file
    assert main(['sr', str(tmp_path/'nope.tif'), str(tmp_path/'o.tif')]) == 2
    assert 'not found' in capsys.readouterr().err
    # unreadable raster
    (tmp_path/'bad.tif').write_bytes(b'this is not a tiff')
    assert main(['sr', str(tmp_path/'bad.tif'), str(tmp_path/'o.tif')]) == 2
    assert 'cannot read' in capsys.readouterr().err
    # wrong band count (4-band without --bands)
    prof = dict(driver='GTiff', width=8, height=8, count=4, dtype='uint8')
    with rasterio.open(tmp_path/'four.tif', 'w', **prof) as d: d.write(np.zeros((4, 8, 8), np.uint8))
    assert main(['sr', str(tmp_path/'four.tif'), str(tmp_path/'o.tif')]) == 2
    assert '--bands' in capsys.readouterr().err
    assert main(['sr', str(tmp_path/'four.tif'), str(tmp_path/'o.tif'), '--bands', '1,2,9']) == 2
    assert 'out of range' in capsys.readouterr().err
    # unknown method, unsupported scale
    assert main(['sr', str(DEMO), str(tmp_path/'o.tif'), '--method', 'nope']) == 2
    assert 'unknown method' in capsys.readouterr().err
    assert main(['sr', str(DEMO), str(tmp_path/'o.tif'), '--method', 'realesrgan', '--scale', '3']) == 2
    assert 'does not support scale' in capsys.readouterr().err
    assert not (tmp_path/'o.tif').exists() and not _no_partials(tmp_path)

def test_nan_and_nodata_are_carried(tmp_path):
    arr = np.random.default_rng(1).uniform(0, 3000, (3, 16, 16)).astype(np.float32)
    arr[:, :4, :4] = np.nan
    prof = dict(driver='GTiff', width=16, height=16, count=3, dtype='float32', crs='EPSG:32631',
                transform=rasterio.transform.from_origin(500000, 5700000, 10, 10))
    with rasterio.open(tmp_path/'nan.tif', 'w', **prof) as d: d.write(arr)
    assert main(['sr', str(tmp_path/'nan.tif'), str(tmp_path/'sr.tif'), '--scale', '2']) == 0
    with rasterio.open(tmp_path/'sr.tif') as d: out = d.read()
    assert np.isnan(out[:, :8, :8]).all() and np.isfinite(out[:, 8:, 8:]).all()

def test_evaluate_errors(tmp_path, capsys):
    a, b = tmp_path/'sr', tmp_path/'hr'; a.mkdir(); b.mkdir()
    img = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(img).save(a/'x.png'); Image.fromarray(img).save(b/'x.png'); Image.fromarray(img).save(b/'y.png')
    assert main(['evaluate', str(a), str(b)]) == 2            # y.png has no SR partner
    assert 'y' in capsys.readouterr().err
    (b/'y.png').unlink()
    assert main(['evaluate', str(a), str(b), '--metrics', 'psnr,bogus']) == 2
    assert 'bogus' in capsys.readouterr().err
    assert main(['evaluate', str(a), str(b), '--out', str(tmp_path/'m')]) == 0
    assert (tmp_path/'m'/'metrics.csv').exists()

@pytest.mark.slow
def test_demo_console_script(tmp_path):
    exe = Path(sys.executable).parent/'rsw'
    r = subprocess.run([str(exe), 'demo', '--out', str(tmp_path/'demo')], capture_output=True, text=True, timeout=600,
                       env={**os.environ, 'HF_HUB_OFFLINE': '1'})
    assert r.returncode == 0, r.stderr[-2000:]
    d = tmp_path/'demo'
    assert {'comparison.png', 'comparison_bicubic.png', 'comparison_realworld.png', 'metrics.csv', 'hr.tif'} <= {p.name for p in d.iterdir()}
    assert {'lr.tif', 'sr_bicubic.tif', 'sr_realesrgan.tif'} <= {p.name for p in (d/'realworld').iterdir()}
    assert {'lr.tif', 'sr_bicubic.tif', 'sr_residual-cnn.tif'} <= {p.name for p in (d/'bicubic').iterdir()}
    import pandas as pd
    t = pd.read_csv(d/'metrics.csv', index_col=[0, 1])
    assert ('bicubic', 'realesrgan') not in t.index   # each model only on the degradation it was trained for
    # the held-out tile (NAIP 2009, never trained on). Clean bicubic LR: a learned method beats bicubic interpolation (PSNR-Y)
    rows = t.loc['bicubic']
    assert rows.drop(index='bicubic')['psnr'].max() > rows.loc['bicubic', 'psnr'] + 0.5, rows
    # real-world LR, the mean of 4 degradation draws: every real-world variant restores structure (SSIM-Y) over bicubic.
    # Its PSNR-Y is level with bicubic here (measured 2026-12-07: -0.12 to +0.03 dB), the open target of issue #32.
    rw = t.loc['realworld']
    assert (rw['draws'] == 4).all() and (t.loc['bicubic']['draws'] == 1).all(), t
    assert (rw.drop(index=['bicubic', 'realesrgan'])['ssim'] > rw.loc['bicubic', 'ssim'] + 0.01).all(), rw

def test_train_runs_a_template(tmp_path, capsys):
    assert main(['train', 'tiny_template', '-p', 'scale=2', '-p', 'size=16', '--out-root', str(tmp_path)]) == 0
    import json
    run = next((tmp_path/'tiny_template').iterdir())
    assert json.loads((run/'params.json').read_text())['scale'] == 2       # the -p value reached the template
    assert main(['train', 'nope_template']) == 2 and 'no experiment template' in capsys.readouterr().err
    assert main(['train', 'tiny_template', '-p', 'oops']) == 2 and 'NAME=VALUE' in capsys.readouterr().err

def test_scene_command(tmp_path, capsys):
    out = tmp_path/'scene.tif'
    assert main(['scene', str(DEMO), str(out), '--method', 'bicubic', '--scale', '2', '--tile', '96', '--overlap', '16']) == 0
    with rasterio.open(DEMO) as s, rasterio.open(out) as d:
        assert d.crs == s.crs and (d.width, d.height) == (2 * s.width, 2 * s.height)
        assert np.allclose(np.array(s.res) / 2, d.res)
    assert main(['scene', str(DEMO), str(tmp_path/'x.tif'), '--method', 'realesrgan', '--scale', '3']) == 2
    assert 'does not support scale' in capsys.readouterr().err and not (tmp_path/'x.tif').exists()

@pytest.mark.filterwarnings('ignore:.*RANDOM weights')
def test_scene_method_options(tmp_path, capsys):
    "-O NAME=VALUE reaches the method's factory (here: the student's in-window latent tiling)."
    small = tmp_path/'small.tif'
    with rasterio.open(DEMO) as s:
        prof = dict(s.profile, width=48, height=40, transform=s.window_transform(rasterio.windows.Window(0, 0, 48, 40)))
        with rasterio.open(small, 'w', **prof) as d: d.write(s.read(window=rasterio.windows.Window(0, 0, 48, 40)))
    outs = {}
    for name, extra in (('whole', []), ('tiled', ['-O', 'latent_tile=8', '-O', 'latent_overlap=4'])):
        outs[name] = tmp_path/f'{name}.tif'
        assert main(['scene', str(small), str(outs[name]), '--method', 'slim-student', '--tile', '64', '--overlap', '8', *extra]) == 0
    with rasterio.open(outs['whole']) as a, rasterio.open(outs['tiled']) as b:
        assert a.shape == b.shape == (160, 192) and a.crs == b.crs and not np.array_equal(a.read(), b.read())
    assert main(['scene', str(small), str(tmp_path/'x.tif'), '--method', 'slim-student', '-O', 'latent_tile']) == 2
    assert 'NAME=VALUE' in capsys.readouterr().err and not (tmp_path/'x.tif').exists()
    assert main(['scene', str(small), str(tmp_path/'y.tif'), '--method', 'slim-student', '-O', 'latent_tile=5']) == 2
    assert 'multiples of 2' in capsys.readouterr().err and not (tmp_path/'y.tif').exists()

def test_map_command(tmp_path):
    pytest.importorskip('offlinefolium')
    assert main(['sr', str(DEMO), str(tmp_path/'sr.tif'), '--scale', '2']) == 0
    assert main(['map', str(DEMO), str(tmp_path/'sr.tif'), str(tmp_path/'m.html'), '--max-side', '256']) == 0
    html = (tmp_path/'m.html').read_text()
    assert 'leaflet' in html.lower() and 'https://cdn' not in html

# --- issue #30: data safety in sr and evaluate ---

def _snapshot(d: Path) -> dict:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(Path(d).rglob('*')) if p.is_file()}

def _png(path, seed=0, size=(12, 16)):
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)).save(path)

def test_sr_never_writes_over_its_input(tmp_path, capsys):
    "rsw sr IN IN used to replace IN and exit 0; rsw sr DIR DIR replaced every file."
    d = tmp_path/'in'; d.mkdir(); _png(d/'a.png', 0); _png(d/'b.png', 1)
    before = _snapshot(tmp_path)
    assert main(['sr', str(d/'a.png'), str(d/'a.png'), '--scale', '2']) == 2
    assert 'refusing to overwrite the input' in capsys.readouterr().err
    (tmp_path/'link.png').symlink_to(d/'a.png')                   # through a symlink
    assert main(['sr', str(d/'a.png'), str(tmp_path/'link.png'), '--scale', '2']) == 2
    assert main(['sr', str(d), str(d), '--scale', '2']) == 2
    assert 'every input would be replaced' in capsys.readouterr().err
    (tmp_path/'dlink').symlink_to(d, target_is_directory=True)
    assert main(['sr', str(d), str(tmp_path/'dlink'), '--scale', '2']) == 2
    (tmp_path/'link.png').unlink(); (tmp_path/'dlink').unlink()
    assert _snapshot(tmp_path) == before                           # nothing changed
    assert main(['sr', str(d), str(d/'sr'), '--scale', '2']) == 0  # a subfolder output is fine: not read as input on a rerun
    assert main(['sr', str(d), str(d/'sr'), '--scale', '2']) == 0
    assert sorted(p.name for p in (d/'sr').iterdir()) == ['a.png', 'b.png'] and {k: v for k, v in _snapshot(d).items() if '/' not in k} == {k[3:]: v for k, v in before.items()}

def test_sr_nodata_collar_gets_no_holes(tmp_path):
    "Landsat-like: nodata 0 collar, dark pixels beside bright ones; bicubic undershoot used to round valid pixels onto 0 (= nodata)."
    a = np.zeros((3, 24, 24), np.uint16)
    inner = np.where(np.arange(16) < 8, 1, 3000).astype(np.uint16)[None].repeat(16, 0)      # dark beside bright: bicubic undershoots
    a[:, 4:20, 4:20] = inner; a[0, 10, 10] = 0                                              # one valid pixel with a 0 band: the range starts at 0
    prof = dict(driver='GTiff', width=24, height=24, count=3, dtype='uint16', nodata=0, crs='EPSG:32631',
                transform=rasterio.transform.from_origin(500000, 5700000, 30, 30))
    with rasterio.open(tmp_path/'l8.tif', 'w', **prof) as d: d.write(a)
    assert main(['sr', str(tmp_path/'l8.tif'), str(tmp_path/'sr.tif'), '--scale', '2']) == 0
    with rasterio.open(tmp_path/'sr.tif') as d: out = d.read()
    valid = ~(a == 0).all(0); vo = valid.repeat(2, 0).repeat(2, 1)
    assert (out[:, ~vo] == 0).all()                       # the collar stays nodata
    assert not (out[:, vo] == 0).any(), int((out[:, vo] == 0).sum())   # no valid output value reads as nodata

def test_sr_stretch_is_explicit_and_recorded(tmp_path, shared, capsys):
    src = shared/'spacenet_solaris'/'atlanta_pan'/'sample_geotiff.tif'
    with rasterio.open(src) as s:
        w = rasterio.windows.Window(0, 0, 40, 30); arr = s.read(window=w)
        prof = dict(s.profile, width=40, height=30, transform=s.window_transform(w))
    with rasterio.open(tmp_path/'pan.tif', 'w', **prof) as d: d.write(arr)
    assert main(['sr', str(tmp_path/'pan.tif'), str(tmp_path/'auto.tif'), '--scale', '2']) == 0
    assert main(['sr', str(tmp_path/'pan.tif'), str(tmp_path/'clip.tif'), '--scale', '2', '--stretch', '5,95']) == 0
    with rasterio.open(tmp_path/'auto.tif') as a, rasterio.open(tmp_path/'clip.tif') as c:
        ta, tc, va, vc = a.tags(), c.tags(), a.read(), c.read()
    assert ta['RSW_STRETCH'] == 'auto' and ta['RSW_STRETCH_CLIPS'].startswith('no')
    assert tc['RSW_STRETCH'] == 'percentiles 5,95' and tc['RSW_STRETCH_CLIPS'].startswith('yes') and vc.max() < va.max()
    assert main(['sr', str(tmp_path/'pan.tif'), str(tmp_path/'x.tif'), '--stretch', 'bright']) == 2
    assert 'unknown stretch' in capsys.readouterr().err
    assert main(['sr', str(tmp_path/'pan.tif'), str(tmp_path/'x.png'), '--stretch', '5,95']) == 2
    assert 'write a .tif' in capsys.readouterr().err and not (tmp_path/'x.tif').exists() and not (tmp_path/'x.png').exists()

def test_sr_warns_without_crs(tmp_path):
    from rsworkbench.cli import sr_raster
    with rasterio.open(tmp_path/'plain.tif', 'w', driver='GTiff', width=8, height=8, count=1, dtype='uint8') as d: d.write(np.full((1, 8, 8), 7, np.uint8))
    with pytest.warns(UserWarning, match='has no CRS'): sr_raster(tmp_path/'plain.tif', tmp_path/'o.tif', 'bicubic', 2)

def test_option_errors_are_clear(tmp_path, capsys):
    "-O foo=1 and -O x=!!python/... used to give raw tracebacks."
    assert main(['sr', str(DEMO), str(tmp_path/'o.tif'), '-O', 'foo=1']) == 2
    assert "no option 'foo'" in capsys.readouterr().err
    assert main(['sr', str(DEMO), str(tmp_path/'o.tif'), '-O', f'x=!!python/object/apply:os.system ["touch {tmp_path}/pwned"]']) == 2
    assert 'cannot read the value' in capsys.readouterr().err
    assert main(['scene', str(DEMO), str(tmp_path/'o.tif'), '-O', 'foo=1']) == 2
    assert "no option 'foo'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []

def test_sr_second_writer_refused(tmp_path, capsys):
    from rsworkbench.data.io import output_lock
    with output_lock(tmp_path/'o.tif'):
        assert main(['sr', str(DEMO), str(tmp_path/'o.tif'), '--scale', '2']) == 2
    assert 'being written by another process' in capsys.readouterr().err and not (tmp_path/'o.tif').exists()

def test_evaluate_refuses_size_mismatch_and_duplicate_names(tmp_path, capsys):
    "An SR 1 px larger than its HR used to be resized and scored (a 2x-too-large SR scored higher than the right one)."
    a, b = tmp_path/'sr', tmp_path/'hr'; a.mkdir(); b.mkdir()
    hr = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(hr).save(b/'x.png'); Image.fromarray(np.pad(hr, ((0, 1), (0, 1), (0, 0)), mode='edge')).save(a/'x.png')
    assert main(['evaluate', str(a), str(b), '--metrics', 'psnr']) == 2
    err = capsys.readouterr().err
    assert 'x.png is 17x17 px but HR' in err and '16x16' in err and '--crop' in err
    assert main(['evaluate', str(a), str(b), '--metrics', 'psnr', '--crop']) == 0
    out = capsys.readouterr().out
    assert 'cropped' in out and 'inf' in out                        # the common part is identical
    assert main(['evaluate', str(a), str(b), '--metrics', 'psnr', '--resize']) == 0 and 'resized' in capsys.readouterr().out
    Image.fromarray(hr.repeat(2, 0).repeat(2, 1)).save(a/'x.png')   # a 2x-too-large SR
    assert main(['evaluate', str(a), str(b), '--metrics', 'psnr']) == 2 and '32x32' in capsys.readouterr().err
    Image.fromarray(hr).save(a/'x.png'); Image.fromarray(hr).save(a/'x.jpg')   # two files, one name
    assert main(['evaluate', str(a), str(b), '--metrics', 'psnr']) == 2
    assert 'x.jpg and x.png' in capsys.readouterr().err

def test_weights_check(tmp_path, capsys):
    assert main(['weights', '--check', str(tmp_path/'nope')]) == 2 and 'not found' in capsys.readouterr().err
    (tmp_path/'w').mkdir()
    assert main(['weights', '--check', str(tmp_path/'w')]) == 2 and 'no backbone weights found' in capsys.readouterr().err


def test_demo_leaves_out_a_checkpoint_trained_for_another_scale(tmp_path):
    "rsw demo --scale 32: the shipped x16 SGDM is left out with the reason (it now refuses x32) instead of aborting the demo."
    from rsworkbench.cli import run_demo
    df = run_demo(tmp_path, scale=32, verbose=False)
    methods = set(df.index.get_level_values('method'))
    assert 'sgdm' not in methods and 'bicubic' in methods

# --- issue 31 item 5: start-up and the shared SR path -------------------------------------------------------

def _modules_after(code: str) -> set:
    r = subprocess.run([sys.executable, '-c', code + "\nimport sys; print(' '.join(sorted(sys.modules)))"], capture_output=True, text=True, check=True)
    return set(r.stdout.split())

def test_help_and_methods_import_nothing_heavy():
    "`rsw --help` (building the parser) and `rsw methods` load no torch, diffusers, rasterio, dask, numpy or pandas (they took 2.9 s, now ~0.2 s)."
    heavy = {'torch', 'diffusers', 'rasterio', 'dask', 'numpy', 'pandas', 'xarray'}
    for code in ("from rsworkbench.cli import build_parser; build_parser().format_help()",
                 "import contextlib, io\nfrom rsworkbench.cli import main\nwith contextlib.redirect_stdout(io.StringIO()): main(['methods'])"):
        assert not heavy & _modules_after(code), code

def test_methods_table_matches_registry(capsys):
    "The table `rsw methods` prints without importing the methods equals what the registry holds (names, scales, demo, description)."
    from rsworkbench.cli import method_table, _STRETCH_HELP
    from rsworkbench.registry import list_methods
    from rsworkbench.data.io import STRETCH_HELP
    assert method_table() == {n: (s.scales, s.demo, s.description) for n, s in list_methods().items()}
    assert _STRETCH_HELP == STRETCH_HELP
    assert main(['methods']) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in list_methods())

def test_sr_path_lives_in_srio_and_cli_keeps_names():
    import rsworkbench.cli as cli, rsworkbench.srio as srio
    for n in ('sr_array', 'sr_raster', 'sr_path', 'check_options'): assert getattr(cli, n) is getattr(srio, n)
    from rsworkbench.models.baselines import BicubicUpscaler
    assert BicubicUpscaler is srio.BicubicUpscaler

def test_bicubic_loads_no_diffusion_stack():
    "get_method('bicubic') (rsw sr / rsw scene --method bicubic) imports only its home module: no diffusers, no pipelines, no dask.distributed."
    mods = _modules_after("from rsworkbench.registry import get_method; get_method('bicubic', 2)\nimport rsworkbench.scene")
    assert not {m for m in mods if m.startswith(('diffusers', 'transformers', 'dask.distributed', 'distributed')) or m.endswith('.pipeline')}

def test_sr_folder_batches_equal_sizes(tmp_path):
    "A folder of equal-size tiles goes through the model in batches (model loaded once); outputs byte-identical to one file at a time."
    from rsworkbench import srio
    src = tmp_path/'in'; src.mkdir()
    for i in range(7): Image.fromarray(np.random.default_rng(i).integers(0, 255, (16, 24 if i == 4 else 16, 3), dtype=np.uint8)).save(src/f'{i}.png')
    calls = []
    class Spy(srio.BicubicUpscaler):
        def upscale(self, x): calls.append(x.shape[0]); return super().upscale(x)
    files = sorted(src.iterdir())
    a = srio.sr_files(files, tmp_path/'a', Spy(2), batch=3, progress=False)
    assert calls == [3, 1, 1, 2]          # 0-2; 3 (the next, 4, has another size); 4; 5-6
    calls.clear(); b = srio.sr_files(files, tmp_path/'b', Spy(2), batch=1, progress=False)
    assert calls == [1] * 7
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert main(['sr', str(src), str(tmp_path/'c'), '--scale', '2']) == 0
    assert [p.read_bytes() for p in sorted((tmp_path/'c').iterdir())] == [p.read_bytes() for p in a]

def test_no_module_imports_bench_back():
    "bench imports the method modules; none of them imports bench (the bench <-> texadiff.pipeline cycle is gone)."
    import ast, rsworkbench
    root = Path(rsworkbench.__file__).parent
    users = []
    for p in root.rglob('*.py'):
        if p.name in ('bench.py', 'cli.py', '_modidx.py'): continue
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom) and (n.module or '').endswith('bench') or isinstance(n, ast.Import) and any(a.name.endswith('.bench') for a in n.names):
                users.append(str(p.relative_to(root)))
    assert users == []


def test_export_html_subcommand(tmp_path):
    "rsw export-html: a notebook with a widget becomes one HTML file with the widget state and no CDN script."
    import nbformat
    from rsworkbench.cli import main
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import ipywidgets as w\nw.IntSlider(value=3)")])
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    nbformat.write(nb, tmp_path/'t.ipynb')
    assert main(['export-html', str(tmp_path/'t.ipynb'), str(tmp_path/'t.html'), '--timeout', '300']) == 0
    html = (tmp_path/'t.html').read_text(encoding='utf-8')
    assert 'application/vnd.jupyter.widget-view+json' in html and 'IntSlider' in html
    from rsworkbench.export import external_resources
    assert external_resources(html) == []
