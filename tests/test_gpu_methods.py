"""The shipped default of every method on CUDA against the same model on the CPU (run on the lent GPU: scripts/gpu_session.sh).

Deterministic feed-forward methods must agree pixel for pixel up to float32/TF32 rounding; the diffusion methods draw their noise
from seeded generators, so their CUDA output must score the same PSNR-Y against the HR as the CPU output (within 0.05 dB)."""
import pytest, torch
import torch.nn.functional as F
from rsworkbench.core import data_dir, from_pm1
from rsworkbench.data.datasets import load_rgb
from rsworkbench.metrics import psnr_y
from rsworkbench.registry import get_method

pytestmark = pytest.mark.gpu

@pytest.fixture(scope='module')
def pair():
    hr = load_rgb(data_dir()/'demo_naip_rgb.tif')[None, :, :128, :128]
    lr = F.interpolate(from_pm1(hr), scale_factor=1 / 4, mode='bicubic', align_corners=False, antialias=True).clamp(0, 1) * 2 - 1
    return lr, hr

@pytest.mark.parametrize('name', ['residual-cnn', 'slim-student'])
def test_feed_forward_cuda_matches_cpu(name, pair):
    lr, _ = pair
    cpu = get_method(name, 4, device='cpu').upscale(lr)
    gpu = get_method(name, 4, device='cuda').upscale(lr.cuda())
    assert gpu.is_cuda and gpu.shape == cpu.shape
    assert (gpu.cpu() - cpu).abs().mean() < 2e-3, (gpu.cpu() - cpu).abs().mean()

@pytest.mark.parametrize('name', ['texadiff', 'slim-teacher'])
def test_diffusion_cuda_scores_like_cpu(name, pair):
    lr, hr = pair
    score = lambda dev: psnr_y(from_pm1(get_method(name, 4, device=dev).upscale(lr.to(dev)).cpu().float()), from_pm1(hr)).item()
    c, g = score('cpu'), score('cuda')
    assert abs(c - g) < 0.05, (c, g)
