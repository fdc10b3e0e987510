"The autoencoder stage: the papermill template end to end with tiny parameters on real imagery, and its VAE carried into a method's training template."
import json
from pathlib import Path
import pytest, torch
from diffusers import AutoencoderKL, AutoencoderTiny
from rsworkbench.core import repo_root, RSWError
from rsworkbench.experiments import run_template, load_metrics
from rsworkbench.models.autoencoder import load_vae, swap_vae, recon_psnr
from rsworkbench.sgdm.pipeline import tiny_sgdm

EXP = repo_root()/'nbs'/'experiments'

@pytest.mark.slow
def test_autoencoder_template_then_method_template(tmp_path, shared):
    m = load_metrics(run_template(EXP/'10_train_autoencoder.ipynb', dict(patch=32, batch=2, max_steps=4, ckpt_every=2, val_size=64, device='cpu', threads=1),
                                  'autoencoder', out_root=tmp_path, progress=False))
    assert m['steps'] == 4 and m['params']['max_steps'] == 4 and m['autoencoder'] == 'AutoencoderKL'   # injected parameters took effect
    assert m['n_val'] >= 1 and m['recon_psnr_y'] > 0 and m['bicubic_x4_psnr_y'] > 20 and (Path(m['checkpoint'])/'config.json').exists()
    vae = load_vae(m['checkpoint'])
    # the x1 config: latents at the input's size, no mid-block attention
    m1 = load_metrics(run_template(EXP/'10_train_autoencoder.ipynb', dict(config='tiny-f1', patch=32, batch=2, max_steps=2, ckpt_every=2, val_size=64,
                                                                            device='cpu', threads=1), 'autoencoder', out_root=tmp_path, progress=False))
    v1 = load_vae(m1['checkpoint'])
    assert m1['params']['config'] == 'tiny-f1' and not v1.config.mid_block_add_attention
    assert v1.encode(torch.rand(1, 3, 24, 40)).latent_dist.mean.shape == (1, 4, 24, 40)
    # the SlimDiffSR teacher template trains on top of it; its saved teacher carries the swapped-in VAE
    p = dict(data='synthetic', patch=32, batch=1, lambda_lpips=0.0, discriminator='conv', n_val=1, device='cpu', max_steps=1, estimator_steps=1,
             alpha_mode='variance', unet_rank=4, vae_rank=4, threads=1, lambda_gan=0.0, vae=m['checkpoint'])
    mt = load_metrics(run_template(EXP/'81_slim_train_teacher.ipynb', p, 'slim_teacher', out_root=tmp_path, progress=False))
    assert mt['params']['vae'] == m['checkpoint']
    saved = json.loads((Path(mt['checkpoint'])/'vae'/'config.json').read_text())
    assert saved['block_out_channels'] == list(vae.config.block_out_channels)

def test_taesd_config_and_bad_input(tmp_path):
    t = AutoencoderTiny.from_config({k: v for k, v in __import__('rsworkbench.models.backbones', fromlist=['x']).taesd_config('tiny').items() if not k.startswith('_')})
    t.save_pretrained(tmp_path/'t')
    assert type(load_vae(tmp_path/'t')) is AutoencoderTiny
    assert recon_psnr(t, [torch.rand(1, 3, 16, 16)]) > 0
    with pytest.raises(RSWError, match='no config.json'): load_vae(tmp_path/'missing')
    (tmp_path/'x').mkdir(); (tmp_path/'x'/'config.json').write_text(json.dumps({'_class_name': 'UNet2DModel'}))
    with pytest.raises(RSWError, match='not an AutoencoderKL or AutoencoderTiny'): load_vae(tmp_path/'x')
    pipe = tiny_sgdm()
    with pytest.raises(RSWError, match='latent channels'): swap_vae(pipe, AutoencoderKL(latent_channels=2, block_out_channels=(8,), norm_num_groups=8))
    with pytest.raises(RSWError, match='smaller than the VAE factor'): recon_psnr(pipe.vae, [torch.rand(1, 3, 4, 4)])
