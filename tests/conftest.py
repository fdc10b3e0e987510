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
