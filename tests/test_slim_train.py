"SlimDiffSR training: teacher (estimator warm-up, LoRA, predictor, GAN) 2 steps → save → distil the student from the saved folder → load → infer through the registry; papermill runs of the three templates with tiny parameters."
import json
from pathlib import Path
import math, warnings
import pytest
import torch
from rsworkbench.core import RSWError, seed_everything
from rsworkbench.registry import get_method
from rsworkbench.slim.teacher import lora_layers, perceptual_loss
from rsworkbench.slim.train import (train_teacher, train_student, load_teacher, synthetic_tiles, build_teacher, build_student,
                                    evaluate_slim, batch_at)
from rsworkbench.slim.pipeline import SlimDiffSRPipeline
from rsworkbench.experiments import run_template, load_metrics, template_params
from rsworkbench.metrics import metric_status

TINY_T = dict(batch=1, estimator_steps=1, lambda_lpips=0.0, discriminator='conv', unet_rank=4, vae_rank=4, progress=False, device='cpu')
TINY_S = dict(batch=1, lambda_lpips=0.0, discriminator='conv', progress=False, device='cpu')


def test_teacher_train_save_distil_load_infer(tmp_path):
    torch.set_num_threads(1); seed_everything(0)
    ds = synthetic_tiles(4, 32)
    h = train_teacher(build_teacher('tiny'), ds, tmp_path/'t', max_steps=2, **TINY_T)
    assert h['step'] == [1, 2] and math.isfinite(h['est'][0]) and math.isfinite(h['l1'][1]) and h['discriminator'] == 'conv'
    teacher, pred = load_teacher(tmp_path/'t'/'checkpoint')
    assert pred is not None and lora_layers(teacher.unet) == [] and lora_layers(teacher.vae) == []   # LoRA merged on save
    # distil from the saved folder (the teacher's predictor sets ᾱ* from the HR latent)
    hs = train_student(build_student('tiny'), tmp_path/'t'/'checkpoint', ds, tmp_path/'s', max_steps=2, **TINY_S)
    assert hs['step'] == [1, 2] and hs['mse'][0] > 0 and hs['mmd'][0] >= 0
    lr = ds[0]['lr'][None]
    for name, d in (('slim-student', tmp_path/'s'/'checkpoint'), ('slim-teacher', tmp_path/'t'/'checkpoint')):
        up = get_method(name, 4, 'cpu', checkpoint=str(d))
        out = up.upscale(lr[..., :7, :5])                      # odd size: padded and cropped back exactly
        assert out.shape == (1, 3, 28, 20) and out.abs().max() <= 1 and torch.isfinite(out).all()
    s = SlimDiffSRPipeline.from_pretrained(str(tmp_path/'s'/'checkpoint'))
    o = s(lr, return_attention=True)
    assert o.images.shape == (1, 3, 32, 32) and len(o.attention) > 0
    ev = evaluate_slim(s, [batch_at(ds, 0, 2)])
    assert ev['n_images'] == 2 and 0 < ev['psnr_y'] < 100


def test_bad_input(tmp_path):
    ds = synthetic_tiles(2, 32)
    with pytest.raises(RSWError, match='missing teacher'): train_student(build_student('tiny'), None, ds, max_steps=1, **TINY_S)
    with pytest.raises(RSWError, match='missing teacher'): train_student(build_student('tiny'), tmp_path, ds, max_steps=1, **TINY_S)
    with pytest.raises(RSWError, match='distill must be'): train_student(build_student('tiny'), None, ds, max_steps=1, distill='kl', **TINY_S)
    with pytest.raises(RSWError, match='is not x4'):
        train_student(build_student('tiny'), None, [dict(hr=torch.zeros(3, 32, 32), lr=torch.zeros(3, 16, 16))], max_steps=1, distill='none', **TINY_S)
    if not metric_status('lpips')[0]:   # LPIPS wanted but its backbone is absent: refuse unless the stand-in is chosen
        with pytest.raises(RSWError, match='lpips_stand_in=True'): perceptual_loss(2.5)
        with pytest.raises(RSWError, match='LPIPS cannot run'): train_teacher(build_teacher('tiny'), ds, max_steps=1, **{**TINY_T, 'lambda_lpips': 2.5})


@pytest.mark.slow
def test_templates_tiny(tmp_path):
    base = dict(data='synthetic', patch=32, batch=1, lambda_lpips=0.0, discriminator='conv', n_val=1, device='cpu')
    p1 = dict(base, max_steps=2, estimator_steps=1, alpha_mode='variance', unet_rank=4, vae_rank=4, threads=1)
    m1 = load_metrics(run_template('nbs/experiments/81_slim_train_teacher.ipynb', p1, 'slim_teacher', out_root=tmp_path, progress=False))
    assert m1['params']['alpha_mode'] == 'variance' and m1['alpha_mode'] == 'variance'      # injected, not the default 'predictor'
    assert m1['steps'] == 2 and m1['params']['max_steps'] == 2 and m1['discriminator'] == 'conv'
    # continue that teacher without LoRA (the whole UNet trains; its predictor and estimator carry on)
    p1c = dict(p1, init=m1['checkpoint'], unet_rank=0, vae_rank=0, estimator_steps=0, max_steps=1)
    m1c = load_metrics(run_template('nbs/experiments/81_slim_train_teacher.ipynb', p1c, 'slim_teacher', out_root=tmp_path, progress=False))
    assert m1c['steps'] == 1 and m1c['params']['init'] == m1['checkpoint'] and m1c['predictor_saved'] and m1c['checkpoint'] != m1['checkpoint']
    p2 = dict(base, teacher=m1['checkpoint'], variant='no_qgam', distill='mse', max_steps=2, threads=1, residual=True)
    m2 = load_metrics(run_template('nbs/experiments/82_slim_distill.ipynb', p2, 'slim_distill', out_root=tmp_path, progress=False))
    assert m2['distill'] == 'mse' and m2['mmd'] == 0 and m2['mse'] > 0 and m2['steps'] == 2
    assert m2['teacher_alpha_mode'] == 'predictor'            # default with a teacher: its predictor on the HR latent (paper)
    m2v = load_metrics(run_template('nbs/experiments/82_slim_distill.ipynb', dict(p2, teacher_alpha_mode='variance', max_steps=1), 'slim_distill',
                                    out_root=tmp_path, progress=False))
    assert m2v['teacher_alpha_mode'] == 'variance' and m2v['checkpoint'] != m2['checkpoint']
    assert m2['n_attention_maps'] == 0                        # the no-QGAM variant took effect
    assert json.loads((Path(m2['checkpoint'])/'net'/'config.json').read_text())['residual'] is True   # and the residual student
    # warm start: the same settings load; a student of other settings (same weight shapes: `residual`) is refused, not loaded silently
    p2w = dict(p2, init=m2['checkpoint'], max_steps=1)
    assert load_metrics(run_template('nbs/experiments/82_slim_distill.ipynb', p2w, 'slim_distill', out_root=tmp_path, progress=False))['steps'] == 1
    with pytest.raises(RSWError, match=r'other settings than this run: residual: True there, False here'):
        run_template('nbs/experiments/82_slim_distill.ipynb', dict(p2w, residual=False), 'slim_distill', out_root=tmp_path, progress=False)
    p3 = dict(base, variants=['full', 'no_dsc', 'distill_none'], max_steps=1, sd21_counts=False, seeds=[0, 1], residual=True, distill='mse')
    m3 = load_metrics(run_template('nbs/experiments/83_slim_ablations.ipynb', p3, 'slim_ablations', out_root=tmp_path, progress=False))
    assert set(m3['rows']) == {'full', 'no_dsc', 'distill_none'} and m3['params']['variants'] == p3['variants']
    assert m3['rows']['no_dsc']['params_m'] > m3['rows']['full']['params_m']
    assert all(r['n_seeds'] == 2 and r['steps'] == 1 and 'psnr_y_std' in r for r in m3['rows'].values())
    rd3, = (tmp_path/'slim_ablations').iterdir()
    assert all((rd3/'variants'/v/f'seed{s}'/'checkpoint').exists() for v in p3['variants'] for s in (0, 1))
    assert json.loads((rd3/'variants'/'full'/'seed1'/'checkpoint'/'net'/'config.json').read_text())['residual'] is True
    for t in ('81_slim_train_teacher', '82_slim_distill', '83_slim_ablations'): assert 'run_dir' in template_params(f'nbs/experiments/{t}.ipynb')


def test_teacher_without_lora_and_continued(tmp_path):
    "unet_rank=0 trains the whole UNet (no LoRA) and vae_rank=0 keeps the VAE frozen; a saved teacher continues with its own predictor."
    torch.set_num_threads(1); seed_everything(0)
    ds = synthetic_tiles(4, 32)
    kw = {**TINY_T, 'unet_rank': 0, 'vae_rank': 0}
    pipe = build_teacher('tiny')
    u0, v0 = ({k: v.clone() for k, v in m.state_dict().items()} for m in (pipe.unet, pipe.vae))
    train_teacher(pipe, ds, tmp_path/'a', max_steps=3, **kw)
    assert lora_layers(pipe.unet) == [] and lora_layers(pipe.vae) == []
    changed = [k for k, v in pipe.unet.state_dict().items() if not torch.equal(u0[k], v)]
    assert len(changed) > len(u0) // 2 and 'conv_in.weight' in changed          # the UNet itself trained, not adapters
    assert all(torch.equal(v0[k], v) for k, v in pipe.vae.state_dict().items())   # the VAE did not move
    t, pred = load_teacher(tmp_path/'a'/'checkpoint')
    assert torch.equal(t.unet.conv_in.weight, pipe.unet.conv_in.weight)
    p0 = {k: v.clone() for k, v in pred.state_dict().items()}
    h = train_teacher(t, ds, tmp_path/'b', max_steps=2, **{**kw, 'estimator_steps': 0}, predictor=pred)
    assert h['step'] == [1, 2] and all(math.isfinite(v) for v in h['l1'])
    _, pred_b = load_teacher(tmp_path/'b'/'checkpoint')
    assert pred_b.state_dict().keys() == p0.keys() and any(not torch.equal(p0[k], v) for k, v in pred_b.state_dict().items())   # the given predictor trained on


@pytest.mark.parametrize('alpha_mode', ['predictor', 'fixed'])
def test_teacher_checkpoint_infers_with_its_trained_rule(tmp_path, alpha_mode):
    "Issue 28 #3: a teacher trained with alpha_mode X reloads with X and with its trained predictor (not a fresh one), and infers with them."
    from rsworkbench.slim.pipeline import SlimTeacherPipeline
    from rsworkbench.slim.timestep import AlphaPredictor, alpha_from_variance
    torch.set_num_threads(1); seed_everything(0)
    ds = synthetic_tiles(4, 32)
    pipe = build_teacher('tiny')
    train_teacher(pipe, ds, tmp_path/'t', max_steps=3, alpha_mode=alpha_mode, **TINY_T)
    assert pipe.config.alpha_mode == alpha_mode
    for loaded in (SlimTeacherPipeline.from_pretrained(str(tmp_path/'t'/'checkpoint')), load_teacher(tmp_path/'t'/'checkpoint')[0],
                   get_method('slim-teacher', 4, 'cpu', checkpoint=str(tmp_path/'t'/'checkpoint')).pipe):
        assert loaded.config.alpha_mode == alpha_mode and loaded.predictor is not None
        for k, v in pipe.predictor.state_dict().items(): assert torch.equal(loaded.predictor.state_dict()[k], v), k
    fresh = AlphaPredictor(latent_channels=4, var_channels=4)
    assert any(not torch.equal(fresh.state_dict()[k], v) for k, v in loaded.predictor.state_dict().items())
    lr = ds[0]['lr'][None]
    with torch.no_grad():
        o = loaded(lr)
        z_lr = loaded.encode(torch.nn.functional.interpolate(lr, scale_factor=4, mode='bicubic').clamp(-1, 1))
        mean, s = loaded.estimator(z_lr)
        want = (loaded.predictor(mean, s.exp()) if alpha_mode == 'predictor'
                else torch.full_like(o.alpha, float(loaded.scheduler.alphas_cumprod[999])))
        torch.testing.assert_close(o.alpha, want.expand_as(o.alpha), atol=1e-5, rtol=1e-5)
        assert not torch.allclose(o.alpha, alpha_from_variance(s.exp(), reduce=None), atol=1e-3)          # not the variance rule
        torch.testing.assert_close(loaded(lr, alpha_rule='variance').alpha, alpha_from_variance(s.exp(), reduce=None), atol=1e-5, rtol=1e-5)


def test_teacher_without_predictor_refuses_the_predictor_rule(tmp_path):
    from rsworkbench.slim.pipeline import tiny_teacher
    tp = tiny_teacher()
    assert tp.config.alpha_mode == 'variance' and tp.predictor is None
    with pytest.raises(RSWError, match='no ᾱ\\* predictor'): tp(torch.zeros(1, 3, 8, 8), alpha_rule='predictor')


def test_default_teacher_training_trains_the_estimator(tmp_path):
    "Issue 28 #3: by default the uncertainty estimator is trained first, so the uncertainty map varies with content (an untrained one gives s = 0: one value everywhere)."
    torch.set_num_threads(1); seed_everything(0)
    ds = synthetic_tiles(4, 32)
    kw = {k: v for k, v in TINY_T.items() if k != 'estimator_steps'}
    pipe = build_teacher('tiny')
    x = ds[0]['lr'][None]
    assert pipe(x).uncertainty.std() == 0                                          # untrained: constant map (ᾱ* ≡ 0.5)
    h = train_teacher(pipe, ds, tmp_path/'t', max_steps=10, alpha_mode='variance', **kw)
    assert h['estimator_steps'] == 2 and sum(math.isfinite(e) for e in h['est']) == 2
    o = load_teacher(tmp_path/'t'/'checkpoint')[0](x)
    assert o.uncertainty.std() > 1e-5 and o.alpha.std() > 1e-6                     # varies over the image
    flat = torch.zeros_like(x)
    assert (o.uncertainty - load_teacher(tmp_path/'t'/'checkpoint')[0](flat).uncertainty).abs().max() > 1e-5   # and between images


@pytest.mark.slow
def test_distill_template_usm_target_off(tmp_path):
    "Template 82 `usm_target=False`: the student trains on the plain HR (the training record says so); a teacher bank refuses it."
    p = dict(data='bundled', patch=64, batch=1, lambda_lpips=0.0, lambda_gan=0.0, distill='none', n_val=1, device='cpu', max_steps=1,
             threads=1, residual=True, taesd='tiny-f2')
    m = load_metrics(run_template('nbs/experiments/82_slim_distill.ipynb', dict(p, usm_target=False), 'slim_distill', out_root=tmp_path, progress=False))
    rec = json.loads((Path(m['checkpoint'])/'training.json').read_text())
    assert m['params']['usm_target'] is False and rec['degradation']['usm_target'] is False
    m_on = load_metrics(run_template('nbs/experiments/82_slim_distill.ipynb', p, 'slim_distill', out_root=tmp_path, progress=False))
    assert json.loads((Path(m_on['checkpoint'])/'training.json').read_text())['degradation']['usm_target'] is True   # default: Real-ESRGAN's
    with pytest.raises(RSWError, match='usm_target=False with output_teacher'):
        run_template('nbs/experiments/82_slim_distill.ipynb', dict(p, usm_target=False, data='clean', output_teacher='bicubic'), 'slim_distill',
                     out_root=tmp_path, progress=False)
