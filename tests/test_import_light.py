"Issue 29.5: `import rsworkbench.widgets` and `rsw --help` load no diffusion or raster stack (sys.modules, not timed)."
import subprocess, sys

HEAVY = ('diffusers', 'torchvision', 'lpips', 'pyiqa', 'rasterio', 'rioxarray', 'xarray', 'dask', 'pandas', 'scipy',
         'transformers', 'bitsandbytes', 'peft')

def _modules_after(code: str) -> set:
    "The names in sys.modules after running `code` in a fresh interpreter."
    r = subprocess.run([sys.executable, '-c', code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return set(r.stdout.split())

def _heavy(mods: set) -> set: return {m for m in mods if m.split('.')[0] in HEAVY}

def test_widgets_import_is_light_and_loads_on_use():
    "The module import leaves the heavy stacks out; building an image pair then loads the raster reader on demand."
    mods = _modules_after("import rsworkbench.widgets")
    assert 'rsworkbench.widgets' in mods and 'torch' in mods
    assert not _heavy(mods), sorted(_heavy(mods))
    assert not {m for m in mods if m.endswith('.pipeline') or m in ('rsworkbench.metrics', 'rsworkbench.data.io')}
    used = _modules_after("from rsworkbench.widgets import demo_pair\nlr, hr = demo_pair(4, 32)\n"
                          "assert tuple(lr.shape) == (1, 3, 8, 8) and tuple(hr.shape) == (1, 3, 32, 32)")
    assert {'rsworkbench.data.io', 'xarray'} <= used                    # the lazy import ran when it was needed

def test_explorer_built_after_the_light_import():
    "The imports moved into RTDMExplorer (its pipeline, rtdm_map, binarize, refine_mask, pool_to_latent) run on use."
    code = ("import warnings; warnings.filterwarnings('ignore')\nimport torch; torch.set_num_threads(1)\n"
            "from rsworkbench.widgets import RTDMExplorer, demo_pair\nlr, hr = demo_pair(4, 32)\n"
            "from rsworkbench.texadiff.pipeline import tiny_pipeline\n"
            "rx = RTDMExplorer(lr, hr, pipe=tiny_pipeline(), steps=2, source='reference', min_area=0)\n"
            "f = rx.pipe.vae_scale_factor\n"
            "assert tuple(rx.mask.shape) == (1, 1, 32, 32)\n"
            "assert tuple(rx.mask_latent.shape) == (1, 1, 32 // f, 32 // f)\n"
            "assert rx.n_steps == 2 and 0 <= rx.rich_fraction <= 1")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]

def test_rsw_help_is_light():
    "`rsw --help` (the console script's main) prints the help without torch or any heavy stack."
    code = ("import contextlib, io\nfrom rsworkbench.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n    try: main(['--help'])\n    except SystemExit: pass\n"
            "assert 'usage' in buf.getvalue()")
    mods = _modules_after(code)
    assert not _heavy(mods) and not {'torch', 'numpy'} & mods, sorted(_heavy(mods) | ({'torch', 'numpy'} & mods))
