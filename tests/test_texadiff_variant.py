"""The shipped real-world TexADiff (issue #32): `--variant realworld` loads its own asset, whose PSR stage is `realesrnet`
(the PSNR-guided Real-ESRGAN fine-tune), whose training record names its degradation, and which beats the bicubic variant on
real-world LR."""
import numpy as np, pytest, torch
from rsworkbench.core import data_dir
from rsworkbench.registry import get_method, list_methods, training_record, method_folder, degradation_mismatch
from rsworkbench.data.io import read_raster
from rsworkbench.data.degrade import Degrader
from rsworkbench.metrics import psnr_y

def _hr(side=128):
    "The demo's held-out tile (NAIP 2009: no shipped model trained on it)."
    a = read_raster(data_dir()/'heldout'/'naip_2009_demo_rgb.tif').values[:3, :side, :side].astype(np.float32) / 255
    return torch.from_numpy(a)[None]

def _sr(up, lr):
    with torch.inference_mode(): return ((up.upscale(lr * 2 - 1).float() + 1) / 2).clamp(0, 1)

def test_texadiff_realworld_listed_and_recorded():
    assert list_methods()['texadiff'].variants == ('bicubic', 'realworld')
    folder = method_folder('texadiff', {'variant': 'realworld'})
    rec = training_record(folder)
    assert (rec['degradation'], rec['usm_target'], rec['data'], rec['init']) == ('slimdiffsr', True, 'clean', 'texadiff_x4')
    assert rec['steps'] > 0 and rec['minutes'] > 0 and rec['psr'] == 'realesrnet'
    assert degradation_mismatch(folder, 'slimdiffsr') is None and degradation_mismatch(folder, 'bicubic') is not None

def test_texadiff_realworld_uses_the_realworld_psr(one_thread):
    "The variant's PSR stage is realesrnet (not the bicubic residual CNN the default uses)."
    up, default = get_method('texadiff', 4, variant='realworld'), get_method('texadiff', 4)
    assert up.pipe.config.psr_method == 'realesrnet' and default.pipe.config.psr_method == 'residual-cnn'
    lr = Degrader('slimdiffsr', 4, seed=0)(_hr(64)) * 2 - 1
    with torch.inference_mode():
        rw, bi = get_method('realesrnet', 4).upscale(lr), get_method('residual-cnn', 4).upscale(lr)
        psr = up.pipe.run_psr(lr)
    torch.testing.assert_close(psr, rw)
    assert (psr - bi).abs().mean() > 1e-3
    assert not torch.equal(up.pipe.unet.conv_in.weight, default.pipe.unet.conv_in.weight)   # its own fine-tuned UNet

def test_texadiff_realworld_wins_on_its_own_degradation(one_thread):
    "Real-world LR (9 degradation draws): the realworld variant beats the bicubic one; clean bicubic LR: the other way round."
    hr, ups = _hr(256), {v: get_method('texadiff', 4, variant=v) for v in ('realworld', 'bicubic')}
    ps = lambda v, lr: float(psnr_y((_sr(ups[v], lr) * 255).round() / 255, hr))
    real = [Degrader('slimdiffsr', 4, seed=s)(hr) for s in range(1, 10)]
    rw, bi = (np.mean([ps(v, lr) for lr in real]) for v in ('realworld', 'bicubic'))
    # dB; the whole held-out tile, measured 2026-12-07: +0.40 (single draws -0.19 to +0.9; on its 128 px corner, 3 draws: -0.07)
    assert rw > bi + 0.15, (rw, bi)
    clean = Degrader('bicubic', 4, seed=0)(hr)
    assert ps('bicubic', clean) > ps('realworld', clean)

def test_cli_texadiff_realworld(tmp_path):
    from rsworkbench.cli import main
    from rsworkbench.data.io import write_image
    src = write_image(tmp_path/'lr.png', read_raster(data_dir()/'demo_naip_rgb.tif').values[:3, :48, :48])  # small: fast
    assert main(['sr', str(src), str(tmp_path/'a.png'), '--method', 'texadiff', '--variant', 'realworld']) == 0
    assert main(['sr', str(src), str(tmp_path/'b.png'), '--method', 'texadiff']) == 0
    a, b = read_raster(tmp_path/'a.png').values, read_raster(tmp_path/'b.png').values
    assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).mean() > 0.5   # another model ran
