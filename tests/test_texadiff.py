"TexADiff components wired together as the pipeline will: RTDM -> latent mask -> TADL, controlled UNet, TA-sampling."
import importlib
import pytest, torch
import torch.nn.functional as F

MODULES = ['rtdm', 'control', 'loss', 'sampling']

@pytest.mark.parametrize('name', MODULES)
def test_import(name):
    m = importlib.import_module(f'rsworkbench.texadiff.{name}')
    assert m.__all__

def _tiny_unet():
    from diffusers import UNet2DConditionModel
    torch.manual_seed(0)
    return UNet2DConditionModel(sample_size=8, block_out_channels=(32, 64), layers_per_block=1, cross_attention_dim=32,
                                norm_num_groups=8, attention_head_dim=8, down_block_types=('DownBlock2D', 'CrossAttnDownBlock2D'),
                                up_block_types=('CrossAttnUpBlock2D', 'UpBlock2D')).eval()

TINY_CTRL = dict(lr_embed=(8, 8, 16), mask_embed=(8, 8, 8), latent_embed=(8, 8), image_blocks=(16, 16), cond_blocks=(8, 8),
                 time_proj_dim=16, time_embed_dim=32, sft_hidden=8, out_channels=32, norm_num_groups=4, mid_blocks=1)


def test_rtdm_to_loss_control_and_sampling(one_thread):
    from diffusers import DDIMScheduler
    from rsworkbench.texadiff.rtdm import rtdm_map, binarize, refine_mask, pool_to_latent
    from rsworkbench.texadiff.control import MiniControlNet, attach_control
    from rsworkbench.texadiff.loss import tadl_loss
    from rsworkbench.texadiff.sampling import TASampler
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 64, 64, generator=g)
    hr[1] = 0.5                                                   # element 1: flat, texture-sparse everywhere
    hr[0, :, :, 32:] = 0.5                                        # element 0: rich left half, flat right half
    lr = F.interpolate(hr, scale_factor=0.25, mode='area')
    psr = F.interpolate(lr, scale_factor=4, mode='bicubic').clamp(0, 1)
    m = rtdm_map(psr, hr, perceptual='gmsd')
    mask = pool_to_latent(refine_mask(binarize(m, 0.35), min_area=16))
    assert mask.shape == (2, 1, 8, 8) and mask[0].sum() > 0 and mask[1].sum() == 0
    assert mask[0, 0, :, :3].mean() > mask[0, 0, :, 5:].mean()

    eps, pred = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    assert tadl_loss(eps, pred, mask, alpha=0) == F.mse_loss(pred, eps)
    assert tadl_loss(eps, pred, mask) > tadl_loss(eps, pred, mask, alpha=0)

    unet, ctrl = _tiny_unet(), MiniControlNet(**TINY_CTRL).eval()
    torch.nn.init.normal_(ctrl.zero_out.weight, std=0.05)       # as after some training
    hd = attach_control(unet, ctrl, 'down0')
    enc, lr_pm1 = torch.randn(2, 4, 32, generator=g), lr * 2 - 1
    def unet_fn(x, t, rows):
        with hd.conditions(lr_pm1[rows], mask[rows]):
            return unet(x, t, encoder_hidden_states=enc[rows]).sample
    x0 = torch.randn(2, 4, 8, 8, generator=g)
    with torch.no_grad():
        sub = TASampler(DDIMScheduler()).sample(unet_fn, x0, mask, 10)
        full = TASampler(DDIMScheduler(), subset=False).sample(unet_fn, x0, mask, 10)
    assert sum(sub.skipped) > 0 and sub.saved_unet_evals == sum(sub.skipped)   # the sparse element skipped its UNet calls
    torch.testing.assert_close(sub.latents, full.latents, atol=1e-5, rtol=1e-5)
    hd.remove()


def test_spatial_lpips_refuses_incomplete_backbone(tmp_path):
    "Issue #28: a backbone file without all of AlexNet's features used to load with strict=False (random AlexNet)."
    import torchvision
    from safetensors.torch import save_file
    from rsworkbench.core import RSWError
    from rsworkbench.texadiff.rtdm import SpatialLPIPS
    sd = {k: v.contiguous() for k, v in torchvision.models.alexnet(weights=None).state_dict().items()}
    heads = tmp_path/'alex.safetensors'
    save_file({f'lin{i}.model.1.weight': torch.rand(1, c, 1, 1) for i, c in enumerate(SpatialLPIPS.chans)}, heads)
    save_file({k: v for k, v in sd.items() if not k.startswith('features.8.')}, tmp_path/'cut.safetensors')
    with pytest.raises(RSWError, match=r"cut\.safetensors.*features\.8\.weight"): SpatialLPIPS(tmp_path/'cut.safetensors', heads)
    save_file({'classifier.1.weight': sd['classifier.1.weight']}, tmp_path/'other.safetensors')
    with pytest.raises(RSWError, match=r"other\.safetensors.*features\.0\.weight"): SpatialLPIPS(tmp_path/'other.safetensors', heads)
    save_file(sd, tmp_path/'ok.safetensors')
    sl = SpatialLPIPS(tmp_path/'ok.safetensors', heads)
    assert torch.equal(sl.features[8].weight, sd['features.8.weight'])
