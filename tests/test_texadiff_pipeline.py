"TexADiff end to end: train 2 steps -> save -> load -> infer; the experiment templates under papermill with tiny parameters; bad input."
import json, warnings
from pathlib import Path
import pytest, torch
import numpy as np
import pandas as pd
from rsworkbench.core import RSWError

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT/'nbs'/'experiments'


@pytest.mark.parametrize('name', ['pipeline', 'train'])
def test_import(name):
    import importlib
    assert importlib.import_module(f'rsworkbench.texadiff.{name}').__all__

def _data(n=2):
    from rsworkbench.data.datasets import HRTileDataset, bundled_images
    from rsworkbench.data.degrade import Degrader
    return HRTileDataset(bundled_images()[:n], patch=64, scale=4, degrader=Degrader('realesrgan', 4, seed=0), samples_per_image=2, seed=0)

def test_train_save_load_infer(tmp_path, one_thread):
    from rsworkbench.registry import get_method
    from rsworkbench.texadiff.pipeline import tiny_pipeline, TexADiffPipeline, texadiff_figure
    from rsworkbench.texadiff.train import train_texadiff, batch_at
    ds = _data()
    pipe = tiny_pipeline('tiny-sdxl', placement='down0', tau=0.4)
    hist = train_texadiff(pipe, ds, tmp_path/'run', max_steps=2, batch=2, learning_rate=1e-3, perceptual='gmsd', progress=False)
    assert hist['step'] == [1, 2] and all(l == l for l in hist['loss'])
    assert pipe.control.zero_out.weight.abs().max() > 0                       # trained away from zero init
    ck = tmp_path/'run'/'checkpoint'
    assert json.loads((ck/'model_index.json').read_text())['placement'] == 'down0'
    up = get_method('texadiff', 4, checkpoint=ck, num_inference_steps=2)
    assert isinstance(up.pipe, TexADiffPipeline) and up.pipe.config.tau == 0.4
    torch.testing.assert_close(up.pipe.control.zero_out.weight, pipe.control.zero_out.weight, rtol=0, atol=0)
    lr = batch_at(ds, 0, 2)['lr']
    sr = up.upscale(lr)
    assert sr.shape == (2, 3, 64, 64) and sr.min() >= -1 and sr.max() <= 1
    with torch.no_grad(): ref = pipe(lr, num_inference_steps=2, seed=0)
    torch.testing.assert_close(sr, ref.images)                                # loaded == trained in memory
    assert ref.rtdm.shape == (2, 1, 64, 64) and ref.mask_latent.shape == (2, 1, 8, 8) and len(ref.update_masks) == 2
    fig = texadiff_figure(ref, lr)
    assert len(fig.axes) == 5

def test_bad_inputs(tmp_path, one_thread):
    from rsworkbench.registry import get_method
    from rsworkbench.texadiff.pipeline import tiny_pipeline, build_pipeline, load_texadiff
    pipe = tiny_pipeline()
    lr = torch.zeros(1, 3, 16, 16)
    with pytest.raises(RSWError, match='not x4-compatible'): pipe(lr[..., :15, :16], num_inference_steps=2)
    with pytest.raises(RSWError, match='wrong size'): pipe(lr, num_inference_steps=2, mask=torch.ones(1, 1, 48, 48))
    with pytest.raises(RSWError, match='must be binary'): pipe(lr, num_inference_steps=2, mask=torch.full((1, 1, 8, 8), 0.3))
    with pytest.raises(RSWError, match='scale mismatch'): pipe(lr, num_inference_steps=2, psr=torch.zeros(1, 3, 32, 32))
    with pytest.raises(RSWError, match='scale mismatch'): pipe.set_psr(get_method('bicubic', 2))
    with pytest.raises(RSWError, match='does not support scale 2'): get_method('texadiff', 2)
    with pytest.raises(RSWError, match='missing weights'): get_method('texadiff', 4, checkpoint=tmp_path)
    (tmp_path/'model_index.json').write_text('{"_class_name": "TexADiffPipeline"}')
    with pytest.raises(RSWError, match='could not load'): load_texadiff(checkpoint=tmp_path)
    with pytest.raises(RSWError, match='no weights for the unet'): build_pipeline('sdxl', weights_dir=tmp_path)
    with pytest.warns(UserWarning, match='RANDOM weights'): load_texadiff(size='tiny')

def _run(tpl, params, exp, root):
    from rsworkbench.experiments import run_template, load_metrics
    rd = run_template(EXP/tpl, params, exp, out_root=root, progress=False)
    m = load_metrics(rd)
    for k, v in params.items():                                              # injected values took effect
        if k not in ('threads', 'out_root'): assert m['params'][k] == v, (k, m['params'][k], v)
    return rd, m

TINY_DATA = dict(data='bundled', patch=64, seed=1)

@pytest.mark.slow
def test_template_predictor(tmp_path):
    "Template 71: the RTDM predictor's L1 training."
    rd, m = _run('71_texadiff_train_predictor.ipynb', dict(TINY_DATA, width='tiny', psr='bicubic', batch=2, max_steps=2, n_val=1,
                                                           perceptual='gradient', tau=0.4, threads=1), 'tp', tmp_path)
    assert m['steps'] == 2 and 0 <= m['val_mask_acc'] <= 1 and m['n_params'] < 200_000
    assert (rd/'checkpoint'/'config.json').exists() and (rd/'curves.png').exists()

@pytest.mark.slow
def test_template_train_t_min(tmp_path):
    "Template 72 with t_min > 0 (one-step fine-tuning): trains on t >= t_min only and saves the pipeline with the one-step sampler (t = 999)."
    from rsworkbench.texadiff.pipeline import TexADiffPipeline
    rd, m = _run('72_texadiff_train.ipynb', dict(TINY_DATA, psr='bicubic', batch=2, max_steps=2, t_min=900, threads=1, unfreeze='all'), 'tt', tmp_path)
    assert m['steps'] == 2 and np.isfinite(m['loss'])
    p = TexADiffPipeline.from_pretrained(str(rd/'checkpoint'))
    assert m['unet_trainable'] == sum(q.numel() for q in p.unet.parameters()) > 0     # unfreeze='all' reports the whole UNet
    assert p.scheduler.config.timestep_spacing == 'trailing' and p.config.default_steps == 1
    p.scheduler.set_timesteps(p.config.default_steps); assert p.scheduler.timesteps.tolist() == [999]

@pytest.mark.slow
def test_template_ablations(tmp_path):
    "Template 74 (ablations), which runs 72 (training) and 73 (evaluation) as papermill sub-runs, with a tiny predictor checkpoint."
    from rsworkbench.experiments import collect_frame
    from rsworkbench.texadiff.rtdm import RTDMPredictor
    from rsworkbench.texadiff.pipeline import TINY_PREDICTOR
    pred = tmp_path/'predictor'
    torch.manual_seed(0); RTDMPredictor(**TINY_PREDICTOR).save_pretrained(str(pred))
    sub = tmp_path/'sub'
    params = dict(data='bundled', patch=64, seeds=[1], out_root=str(sub), train_variants=['tadl'], mask_variants=['predicted'], psr='bicubic',
                  predictor=str(pred), train_batch=2, train_steps=2, steps=2, spacing='trailing', eval_batch=2, n_batches=1, latent_residual=True)
    rd, m = _run('74_texadiff_ablations.ipynb', params, 'ab', tmp_path)
    assert set(m['incremental']) == {'+TADL', '+TA-sampling'} and set(m['mask_variants']) == {'predicted'}
    assert m['incremental']['+TADL']['paper_lpips'] == 0.4001 and m['mask_variants']['predicted']['paper_lpips'] == 0.3823
    assert m['n_train_runs'] == 1 and m['n_eval_runs'] == 2                  # ta off/on; the mask grid's 'predicted' run is the shared one
    assert (rd/'incremental.csv').exists() and (rd/'mask_variants.csv').exists()
    ps = pd.read_csv(rd/'per_seed.csv')
    assert len(ps) == 2 and (ps['seed'] == 1).all() and sorted(ps['ta_sampling']) == [False, True] and ps['psnr'].notna().all()
    # the training sub-run (template 72) got its injected parameters
    tr = collect_frame('texadiff_ablation_train', sub)
    assert len(tr) == 1 and tr['alpha'].iloc[0] == 1.0 and tr['rtdm_condition'].iloc[0] and tr['steps'].iloc[0] == 2 and tr['params.alpha'].iloc[0] == 1.0
    assert tr['seed'].iloc[0] == 1 and m['incremental']['+TADL']['n'] == 1
    ck = Path(tr['checkpoint'].iloc[0])
    assert json.loads((ck/'model_index.json').read_text())['psr_method'] == 'bicubic'
    assert json.loads((ck/'model_index.json').read_text())['latent_residual'] is True and tr['latent_residual'].iloc[0]   # passed through to 72
    assert json.loads((ck/'predictor'/'config.json').read_text())['unet_channels'] == [16, 32]    # the given tiny predictor
    # the evaluation sub-runs (template 73)
    ev = collect_frame('texadiff_ablation_eval', sub)
    assert sorted(zip(ev['mask'], ev['ta_sampling'])) == [('predicted', False), ('predicted', True)]
    assert (ev['seed'] == 1).all() and (ev['spacing'] == 'trailing').all() and (ev['label'] == 'tadl').all()
    assert (ev['params.steps'] == 2).all() and (ev['n_tiles'] == 2).all() and (ev['unet_evals'] == 4).all() and (ev['saved_unet_evals'] >= 0).all() and not ev['random_weights'].any()
    assert all((Path(ev.attrs['root'])/r/'samples'/'maps.png').exists() for r in ev.index)


def test_shipped_texadiff_beats_bicubic_on_held_out_tiles(held_out_gains, one_thread):
    "The embedded default TexADiff (residual latent, 1 step): loaded without a checkpoint, above bicubic on held-out real crops."
    from rsworkbench.texadiff.pipeline import SHIPPED_TEXADIFF
    if not (SHIPPED_TEXADIFF/'model_index.json').exists(): pytest.skip('no shipped TexADiff in this checkout')
    gains = held_out_gains('texadiff')
    print('TexADiff PSNR-Y gains over bicubic (dB):', [round(g, 3) for g in gains])
    assert sum(gains) / len(gains) > 0.1, gains


def _ta_effect(kind, steps=20):
    "Mean |TA - plain| of the tiny pipeline's SR on the texture-sparse half and the rich half of a half mask (issue #28 item 1)."
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    lr = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mask = torch.zeros(1, 1, 64, 64); mask[..., :32] = 1
    pipe = tiny_pipeline(scheduler=kind)
    a, b = (pipe(lr, num_inference_steps=steps, mask=mask, ta_sampling=ta, seed=0, color_fix=None).images for ta in (False, True))
    d = (a - b).abs()
    return float(d[..., 32:].mean()), a, b

def test_ta_sampling_survives_every_multistep_scheduler(one_thread):
    "UniPC (build_pipeline's default) kept 36% of DDIM's TA-sampling effect (its corrector rebuilt the held latents) and Heun 0%; "
    "now UniPC's effect is DPM-Solver's (the same predictor without the corrector after a hold) and Heun's is Euler's."
    eff = {k: _ta_effect(k)[0] for k in ('ddim', 'dpm', 'unipc', 'euler', 'heun')}
    assert eff['unipc'] >= 0.9 * eff['dpm'] and eff['unipc'] >= 0.9 * eff['ddim'], eff
    assert eff['heun'] >= 0.5 * eff['euler'] > 0, eff

@pytest.mark.parametrize('kind', ['ddim', 'ddpm', 'euler', 'euler_a', 'unipc', 'dpm', 'pndm', 'heun', 'lcm'])
def test_ta_sampling_all_rich_is_plain_and_seeded(kind, one_thread):
    "Every sampler: an all-rich mask is the plain loop, a seeded call repeats exactly (stochastic steps use the call's generator)."
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    lr = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    pipe = tiny_pipeline(scheduler=kind)
    ones = torch.ones(1, 1, 32, 32)
    plain = pipe(lr, num_inference_steps=6, mask=ones, ta_sampling=False, seed=3).images
    assert torch.equal(pipe(lr, num_inference_steps=6, mask=ones, ta_sampling=True, seed=3).images, plain)
    assert torch.equal(pipe(lr, num_inference_steps=6, mask=ones, ta_sampling=False, seed=3).images, plain)

def test_prompt_text_reaches_the_unet(one_thread):
    "With text encoders the encoded prompt is the UNet's encoder_hidden_states; guidance changes the SR (issue #28 item 2)."
    from rsworkbench.models.backbones import tiny_text_encoders
    from rsworkbench.texadiff.pipeline import tiny_pipeline, TEXADIFF_PROMPT, TEXADIFF_NEGATIVE_PROMPT
    te = tiny_text_encoders('sdxl')
    pipe = tiny_pipeline('tiny-sdxl', text_encoders=te, prompt='farmland with a river')
    seen = []
    h = pipe.unet.register_forward_pre_hook(lambda m, a, kw: seen.append((kw['encoder_hidden_states'], kw['added_cond_kwargs']['text_embeds'])),
                                            with_kwargs=True)
    lr = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out5 = pipe(lr, num_inference_steps=2, seed=0, guidance_scale=5.0).images
    h.remove()
    hid, pooled = te.encode(['farmland with a river', TEXADIFF_NEGATIVE_PROMPT])
    ehs, tes = seen[0]
    assert ehs.shape[0] == 2                                   # CFG: negative first, then the prompt
    torch.testing.assert_close(ehs[1], hid[0]); torch.testing.assert_close(ehs[0], hid[1])
    torch.testing.assert_close(tes[1], pooled[0]); torch.testing.assert_close(tes[0], pooled[1])
    out1 = pipe(lr, num_inference_steps=2, seed=0, guidance_scale=1.0).images
    assert (out5 - out1).abs().mean() > 1e-4
    assert pipe.prompt.config.source == 'text-encoder' and pipe.prompt.config.prompt == 'farmland with a river'
    assert TEXADIFF_PROMPT != 'farmland with a river'
