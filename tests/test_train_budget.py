"`max_minutes` bounds a training call even when checkpoints are frequent (each save used to restart the budget's clock, so a call with checkpoints more often than its budget never stopped)."
import pytest, torch
from rsworkbench.core import seed_everything, data_dir
from rsworkbench.data.datasets import HRTileDataset, bundled_images
from rsworkbench.data.degrade import Degrader

BUDGET = dict(max_steps=40, ckpt_every=1, max_minutes=0.002)   # 0.12 s: a few steps at most; 40 if the budget were ignored

def _ds(): return HRTileDataset(bundled_images()[:2], patch=32, scale=4, degrader=Degrader('bicubic', 4, seed=0), samples_per_image=2, seed=0)

def _steps(h): return len(h['step']) if isinstance(h.get('step'), list) else h['step']

def test_autoencoder_budget(tmp_path, one_thread):
    from rsworkbench.models.autoencoder import train_autoencoder
    from rsworkbench.models.backbones import build_vae
    from rsworkbench.models.train import PatchSampler
    h = train_autoencoder(build_vae('tiny'), PatchSampler(bundled_images()[:2], 32, seed=0), tmp_path, batch=1, progress=False, **BUDGET)
    assert 1 <= _steps(h) < BUDGET['max_steps']

def test_slim_budget(tmp_path, one_thread):
    from rsworkbench.slim.train import train_student, train_teacher, build_student, build_teacher
    kw = dict(batch=1, lambda_lpips=0.0, lambda_gan=0.0, progress=False, device='cpu', **BUDGET)
    h = train_student(build_student('tiny'), None, _ds(), tmp_path/'s', distill='none', **kw)
    assert 1 <= _steps(h) < BUDGET['max_steps']
    h = train_teacher(build_teacher('tiny'), _ds(), tmp_path/'t', estimator_steps=0, unet_rank=4, vae_rank=4, **kw)
    assert _steps(h) < BUDGET['max_steps']

def test_texadiff_budget(tmp_path, one_thread):
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    from rsworkbench.texadiff.train import train_texadiff, train_predictor
    pipe = tiny_pipeline()
    h = train_texadiff(pipe, _ds(), tmp_path/'d', batch=1, perceptual='gmsd', progress=False, **BUDGET)
    assert 1 <= _steps(h) < BUDGET['max_steps']
    h = train_predictor(pipe.predictor, _ds(), pipe, tmp_path/'p', batch=1, perceptual='gmsd', progress=False, **BUDGET)
    assert _steps(h) < BUDGET['max_steps']
