"SlimDiffSR: tiny end-to-end checks (train 2 steps → save → load → infer), registry, bad input."
import warnings
import pytest
import torch
import torch.nn.functional as F
from rsworkbench.core import RSWError, seed_everything
from rsworkbench.registry import get_method, list_methods
from rsworkbench.slim.pipeline import SlimDiffSRPipeline, SlimTeacherPipeline, tiny_student, tiny_teacher, bicubic_up, pad_to
from rsworkbench.slim.distill import DistillLoss
from rsworkbench.slim.timestep import tv_penalty
from rsworkbench.slim.uncertainty import jeffreys_loss


def _batch(n=2, s=16):
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(n, 3, 4 * s, 4 * s, generator=g) * 2 - 1
    return F.interpolate(hr, scale_factor=0.25, mode='bicubic', antialias=True).clamp(-1, 1), hr


@pytest.mark.slow
def test_teacher_student_train_save_load_infer(tmp_path):
    torch.set_num_threads(1); seed_everything(0)
    lr, hr = _batch()
    tp, sp = tiny_teacher(), tiny_student()
    # teacher: 2 steps of L1 + Jeffreys + TV on the ᾱ map
    opt = torch.optim.AdamW([*tp.unet.parameters(), *tp.estimator.parameters()], lr=1e-4)
    for _ in range(2):
        z_lr, z_gt = tp.encode(bicubic_up(lr, 4)), tp.encode(hr).detach()
        z0, z_var, alpha, t = tp.forward_latent(z_lr)
        mean, s = tp.estimator(z_lr)
        loss = F.l1_loss(tp.decode(z0), hr) + jeffreys_loss(z_gt, mean, s) + tv_penalty(alpha)
        opt.zero_grad(); loss.backward(); opt.step()
    # student: 2 steps of L1 + MSE+MMD distillation against the teacher's up-level features
    with torch.no_grad(): _, _, _, _, tf = tp.forward_latent(tp.encode(bicubic_up(lr, 4)), return_features=True)
    x, _ = pad_to(bicubic_up(lr, 4), sp.net.factor)
    y, sf = sp.net(x, return_features=True)
    dl = DistillLoss([f.shape[1] for f in sf], [f.shape[1] for f in tf])
    opt = torch.optim.Adam([*sp.net.parameters(), *dl.parameters()], lr=5e-5)
    for _ in range(2):
        y, sf = sp.net(x, return_features=True)
        sf = [F.interpolate(f, size=t_.shape[-2:]) if f.shape[-2:] != t_.shape[-2:] else f for f, t_ in zip(sf, tf)]
        d, parts = dl(sf, tf)
        loss = F.l1_loss(y, hr) + d
        opt.zero_grad(); loss.backward(); opt.step()
        assert torch.isfinite(loss)
    with pytest.raises(RSWError, match='missing teacher'): dl(sf, None)
    tp.save_pretrained(tmp_path/'teacher'); sp.save_pretrained(tmp_path/'student')
    for name, d in (('slim-teacher', 'teacher'), ('slim-student', 'student')):
        up = get_method(name, 4, 'cpu', checkpoint=str(tmp_path/d))
        out = up.upscale(lr[:1, :, :15, :13])   # odd size: padded and cropped back exactly
        assert out.shape == (1, 3, 60, 52) and out.abs().max() <= 1
    ref = SlimDiffSRPipeline.from_pretrained(str(tmp_path/'student'))(lr).images
    assert torch.allclose(ref, sp(lr).images, atol=1e-5)
    o = SlimTeacherPipeline.from_pretrained(str(tmp_path/'teacher'))(lr)
    assert o.uncertainty is not None and o.timestep.shape == o.alpha.shape


def test_registry_and_bad_input(tmp_path):
    assert {'slim-student', 'slim-teacher'} <= set(list_methods())
    from rsworkbench.slim.pipeline import SHIPPED_STUDENT
    assert list_methods()['slim-student'].demo is (SHIPPED_STUDENT/'model_index.json').exists()
    from rsworkbench.slim.pipeline import SHIPPED_TEACHER
    assert list_methods()['slim-teacher'].demo is (SHIPPED_TEACHER/'model_index.json').exists()
    with pytest.raises(RSWError, match='does not support scale'): get_method('slim-student', 2, 'cpu')
    with pytest.raises(RSWError, match='missing weights'): get_method('slim-student', 4, 'cpu', checkpoint=str(tmp_path))
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always'); up = get_method('slim-teacher', 4, 'cpu', size='tiny')
    assert any('RANDOM' in str(w.message) for w in ws)
    with pytest.raises(RSWError, match=r'\(b, 3, h, w\)'): up.upscale(torch.zeros(3, 8, 8))


def test_shipped_teacher_is_a_real_sr(held_out_gains):
    "The embedded default teacher: a trained super-resolution (random weights give ~10 dB below bicubic), within 0.5 dB of bicubic or above."
    from rsworkbench.slim.pipeline import SHIPPED_TEACHER
    if not (SHIPPED_TEACHER/'model_index.json').exists(): pytest.skip('no shipped teacher in this checkout')
    gains = held_out_gains('slim-teacher')
    assert sum(gains) / len(gains) > -0.5, gains

def test_shipped_student_beats_bicubic_on_held_out_tiles(held_out_gains):
    "The embedded default student: loaded without a checkpoint, no random-weights warning, above bicubic on held-out real crops."
    from rsworkbench.slim.pipeline import SHIPPED_STUDENT
    if not (SHIPPED_STUDENT/'model_index.json').exists(): pytest.skip('no shipped student in this checkout')
    gains = held_out_gains('slim-student')
    assert sum(gains) / len(gains) > 0.1, gains


def test_mmd_samples_cover_rows_and_columns():
    "Issue 28 #4: MMD samples positions over the whole (b, h, w) grid; the old stride at batch 16 on 64x64 took column 0 only."
    from rsworkbench.slim.distill import feature_samples, sample_positions
    b, h, w = 16, 64, 64
    pos = torch.stack(torch.meshgrid(torch.arange(b), torch.arange(h), torch.arange(w), indexing='ij')).float().permute(1, 0, 2, 3)
    s = feature_samples(pos, 512, torch.Generator().manual_seed(0))                  # each sample's (b, y, x)
    assert s.shape == (512, 3)
    nb, ny, nx = (len(s[:, i].unique()) for i in range(3))
    assert nb == 16 and ny > 48 and nx > 48, (nb, ny, nx)
    assert len({tuple(r) for r in s.tolist()}) == 512                                  # without replacement
    assert torch.equal(sample_positions(b * h * w, 512, torch.Generator().manual_seed(1)),
                       sample_positions(b * h * w, 512, torch.Generator().manual_seed(1)))   # seeded: reproducible
    # the loss: seeded draws are reproducible, the same positions in student and teacher (identical maps give 0)
    dl = DistillLoss([8], [8], max_samples=64)
    f = [torch.randn(16, 8, 16, 16)]
    ft = [f[0] + 0.3 * torch.randn_like(f[0])]
    v = [dl(f, ft, torch.Generator().manual_seed(k))[1]['mmd'] for k in (0, 0, 1)]
    assert v[0] == v[1] and v[0] != v[2]
    assert dl(f, [f[0].clone()], torch.Generator().manual_seed(0))[1]['mmd'] == pytest.approx(0, abs=1e-6)


@pytest.mark.parametrize('fused', [False, True])
def test_student_autoencoder_path_is_taesd(fused):
    "Issue 28 #5: the student's encode/decode path is AutoencoderTiny's with the same weights (plain: exactly; fused: TAESD + the UNet's conv_in/conv_out, on the interior)."
    from diffusers import AutoencoderTiny
    from rsworkbench.models.backbones import build_unet, build_taesd
    from rsworkbench.slim.taesd import SlimDiffSRNet
    torch.manual_seed(0)
    un, tae = build_unet('tiny', seed=0), build_taesd('tiny', seed=0)
    assert isinstance(tae, AutoencoderTiny)
    net = SlimDiffSRNet.from_pretrained_parts(un, tae, fused=fused, qgam_queries=8, qgam_dim=16).eval()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    h = torch.randn(1, 4 if not fused else un.config.block_out_channels[0], 24, 24)
    with torch.no_grad():
        z = tae.encode(x).latents
        if not fused:
            torch.testing.assert_close(net.encode(x), z, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(net.decode(h), tae.decode(h).sample, atol=1e-5, rtol=1e-5)
        else:
            i, o = (..., slice(1, -1), slice(1, -1)), (..., slice(48, -48), slice(48, -48))
            torch.testing.assert_close(net.encode(x)[i], un.conv_in(z)[i], atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(net.decode(h)[o], tae.decoder.layers(un.conv_out(h)).mul(2).sub(1)[o], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('prediction_type', ['epsilon', 'v_prediction'])
def test_teacher_pipeline_x0_follows_the_scheduler(prediction_type):
    "Issue 28 #3: the teacher pipeline turns the UNet output into z0 by the scheduler's parameterisation (diffusers' own pred_original_sample)."
    from rsworkbench.models.backbones import build_scheduler
    from rsworkbench.slim.teacher import predict_x0
    torch.manual_seed(0)
    tp = tiny_teacher()
    tp = SlimTeacherPipeline(tp.unet, tp.vae, build_scheduler('tiny', 'ddpm', prediction_type=prediction_type), tp.estimator,
                             alpha_mode='fixed', fixed_timestep=600)
    lr, _ = _batch(1, 8)
    with torch.no_grad():
        z_lr = tp.encode(bicubic_up(lr, 4))
        z0, _, alpha, t = tp.forward_latent(z_lr)
        assert torch.allclose(t, torch.full_like(t, 600.), atol=1e-3)
        u = tp.unet(z_lr, torch.tensor([600.]), encoder_hidden_states=torch.zeros(1, 1, tp.unet.config.cross_attention_dim)).sample
        ref = tp.scheduler.step(u, 600, z_lr).pred_original_sample
    torch.testing.assert_close(z0, ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(predict_x0(u, z_lr, alpha, prediction_type), ref, atol=1e-4, rtol=1e-4)
