"""Shipped variants (issue #32): each is better on the degradation it was trained for, evaluation flags a mismatched row, and
the CLI selects them."""
import warnings
import numpy as np, pytest, torch
from rsworkbench.core import data_dir, RSWError
from rsworkbench.registry import get_method, list_methods, method_folder, degradation_mismatch
from rsworkbench.data.io import read_raster
from rsworkbench.data.degrade import Degrader
from rsworkbench.metrics import psnr_y

def _hr(side=128):
    "The demo's held-out tile (NAIP 2009: no shipped model trained on it)."
    a = read_raster(data_dir()/'heldout'/'naip_2009_demo_rgb.tif').values[:3, :side, :side].astype(np.float32) / 255
    return torch.from_numpy(a)[None]

def _psnr(method, variant, lr, hr):
    up = get_method(method, 4, 'cpu', variant=variant)
    with torch.inference_mode(): sr = ((up.upscale(lr * 2 - 1).float() + 1) / 2).clamp(0, 1)
    return float(psnr_y((sr * 255).round() / 255, hr))

def test_shipped_variants_listed():
    for m in ('residual-cnn', 'slim-student', 'texadiff'): assert list_methods()[m].variants == ('bicubic', 'realworld')
    with pytest.raises(RSWError, match="no 'realworld' variant"): get_method('slim-teacher', 4, variant='realworld')

# the whole 256 px held-out demo tile, 9 draws: measured 2026-12-07 realworld - bicubic variant +0.31 dB (CNN), +0.14 dB
# (student); on clean bicubic LR the bicubic variants lead by 2.4 dB
@pytest.mark.parametrize('method, margin', [('residual-cnn', 0.15), ('slim-student', 0.05)])   # dB (the student gains less)
def test_each_variant_wins_on_its_own_degradation(method, margin, one_thread):
    "Real-world LR (9 degradation draws): the realworld variant beats the bicubic one; clean bicubic LR: the other way round."
    hr = _hr(256)
    real = [Degrader('slimdiffsr', 4, seed=s)(hr) for s in range(1, 10)]
    rw = np.mean([_psnr(method, 'realworld', lr, hr) for lr in real]); bi = np.mean([_psnr(method, 'bicubic', lr, hr) for lr in real])
    assert rw > bi + margin, (rw, bi)
    clean = Degrader('bicubic', 4, seed=0)(hr)
    assert _psnr(method, 'bicubic', clean, hr) > _psnr(method, 'realworld', clean, hr)

# measured 2026-12-07 (shipped rank-4 fine-tune, 9 draws of the 256 px held-out tile): realesrnet 29.38, Real-ESRGAN 28.32,
# bicubic 28.59 dB PSNR-Y
NET_MARGIN = 0.4

def test_realesrnet_beats_the_gan_it_starts_from(one_thread):
    """realesrnet (Real-ESRGAN x4plus with an L1-fine-tuned tail laid over it): on real-world LR of the held-out tile (9 draws)
    above bicubic and above Real-ESRGAN itself, i.e. the overlay acts (without it the model is Real-ESRGAN)."""
    hr = _hr(256)
    real = [Degrader('slimdiffsr', 4, seed=s)(hr) for s in range(1, 10)]
    net, gan, bi = (np.mean([_psnr(m, None, lr, hr) for lr in real]) for m in ('realesrnet', 'realesrgan', 'bicubic'))
    assert net > bi + NET_MARGIN and net > gan + NET_MARGIN, (net, gan, bi)
    assert list_methods()['realesrnet'].variants == ()
    assert degradation_mismatch(method_folder('realesrnet', {}), 'slimdiffsr') is None
    assert degradation_mismatch(method_folder('realesrnet', {}), 'bicubic') is not None

def test_mismatch_is_flagged():
    assert degradation_mismatch(method_folder('residual-cnn', {}), 'slimdiffsr') is not None           # bicubic-trained
    assert degradation_mismatch(method_folder('residual-cnn', {'variant': 'realworld'}), 'slimdiffsr') is None
    from rsworkbench.experiments import evaluate_methods
    hr = _hr(64); lr = Degrader('slimdiffsr', 4, seed=0)(hr)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        tab = evaluate_methods({'residual-cnn': {}, 'residual-cnn:rw': {'variant': 'realworld'}}, [(lr, hr)], ('psnr',), 4,
                               progress=False, degradation='slimdiffsr')
    assert list(tab.attrs['mismatched']) == ['residual-cnn'] and any('mismatched' in str(x.message) for x in w)

def test_cli_variant(tmp_path):
    from rsworkbench.cli import main
    src = data_dir()/'demo_naip_rgb.tif'
    assert main(['sr', str(src), str(tmp_path/'a.tif'), '--method', 'residual-cnn', '--variant', 'realworld']) == 0
    assert main(['sr', str(src), str(tmp_path/'b.tif'), '--method', 'residual-cnn']) == 0
    a, b = read_raster(tmp_path/'a.tif').values, read_raster(tmp_path/'b.tif').values
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 0.5   # another model ran
    assert main(['sr', str(src), str(tmp_path/'c.tif'), '--method', 'slim-teacher', '--variant', 'realworld']) == 2

def test_training_records_name_the_preset():
    "A trainer's recorded degradation names the preset, so a new checkpoint's training.json can be compared at evaluation."
    from rsworkbench.models.train import PatchSampler
    from rsworkbench.data.datasets import bundled_images
    from rsworkbench.registry import recorded_degradation
    for preset in ('slimdiffsr', 'realesrgan'):
        ps = PatchSampler(bundled_images()[:1], 32, 4, degrader=Degrader(preset, 4))
        assert recorded_degradation(dict(degradation=ps.degradation)) == preset
    assert recorded_degradation(dict(degradation=PatchSampler(bundled_images()[:1], 32, 4).degradation)) == 'bicubic'
