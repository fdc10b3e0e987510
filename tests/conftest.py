import os
os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('TRANSFORMERS_OFFLINE', '1')
os.environ.setdefault('MPLBACKEND', 'Agg')
import pytest, torch
from rsworkbench.core import shared_data_dir

def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available(): return
    skip = pytest.mark.skip(reason='needs CUDA')
    for it in items:
        if 'gpu' in it.keywords: it.add_marker(skip)

@pytest.fixture
def shared():
    "The real data beside the checkout; skip the test when it is absent."
    d = shared_data_dir()
    if d is None: pytest.skip('../shared/data is absent')
    return d

@pytest.fixture
def one_thread():
    "Tiny tensors: one thread is faster and steadier on a shared CPU."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def _held_out_gains(name:str, scale:int=4, val_size:int=128) -> list:
    "PSNR-Y gains (dB) over bicubic of the method's shipped default on the held-out clean-licence crops (`val_size` px)."
    import warnings
    from rsworkbench.registry import get_method
    from rsworkbench.slim.pipeline import bicubic_up
    from rsworkbench.data.datasets import shared_images, split_files
    from rsworkbench.models.train import val_pairs
    from rsworkbench.metrics import psnr_y
    files = sorted(f for fs in shared_images(clean_only=True).values() for f in fs)
    if not files: pytest.skip('../shared/data not found')
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always'); up = get_method(name, scale, 'cpu')
    assert not any('RANDOM' in str(w.message) for w in ws), [str(w.message) for w in ws]
    _, val = split_files(files, 0.2, 0)          # the split the shipped models were trained beside (never on)
    gains = []
    for lr, hr in val_pairs(val, scale=scale, val_size=val_size):
        with torch.no_grad(): sr = up.upscale(lr * 2 - 1).add(1).div(2).clamp(0, 1)
        bic = bicubic_up(lr * 2 - 1, scale).add(1).div(2).clamp(0, 1)
        assert sr.shape == hr.shape
        gains.append(float(psnr_y(sr, hr).mean() - psnr_y(bic, hr).mean()))
    assert gains, 'no held-out pairs'
    return gains

@pytest.fixture
def held_out_gains():
    "`held_out_gains(name)`: the shipped default's PSNR-Y gains over bicubic on the held-out real crops (skips without ../shared/data)."
    return _held_out_gains
