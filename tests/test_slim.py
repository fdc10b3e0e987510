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
    ref = SlimDiffSRPipeline.from_pretrained(str(tmp_path/'student'))(lr).sr
    assert torch.allclose(ref, sp(lr).sr, atol=1e-5)
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
