"SGDM: vector maps on real data, encoder/adapter/UNet/SFlow/pipeline, train → save → load → infer, the templates."
import json, warnings
from pathlib import Path
import numpy as np, pytest, torch
from rsworkbench.core import RSWError, shared_data_dir
from rsworkbench.data.vectormap import shared_checks, whu_checks, portugal_tiles, mask_pairs, rasterize_features, grid_of, VectorMap
from rsworkbench.data.datasets import bundled_images
from rsworkbench.registry import get_method, list_methods
from rsworkbench.sgdm.pipeline import SGDMPipeline, tiny_sgdm, load_sgdm, SHIPPED_SGDM
from rsworkbench.sgdm.train import (image_batches, map_batches, train_stage1, train_stage2, sgdm_pairs, split_pairs,
                                    evaluate_sgdm, MapCrops)
from rsworkbench.sgdm.sflow import SFlow
from rsworkbench.experiments import run_template, load_metrics

ROOT = Path(__file__).resolve().parents[1]

def ck_scale(run): return json.loads((run/'checkpoint'/'model_index.json').read_text())['train_scale']
torch.set_num_threads(1)

def test_vectormap_real_iou(shared):
    chk = shared_checks(shared)
    parking = [v for k, v in chk.items() if k.startswith('robosat_parking_iou')]
    assert parking and min(parking) >= 0.9, chk      # OSM parking polygons vs OSM-derived masks
    assert chk['vegas_roads_iou'] >= 0.9, chk         # buffered SpaceNet road lines vs the road mask
    tiles = portugal_tiles(shared)
    assert len(tiles) == 8 and all(m.classes.shape == (256, 256) for _, m in tiles)
    assert any('building' in m.present for _, m in tiles) and all('road' in m.present for _, m in tiles)
    whu = whu_checks(shared)                          # WHU footprint masks -> polygons -> rasterized back
    assert len(whu) == 4 and min(whu.values()) >= 0.99, whu
    pairs = sgdm_pairs(True, shared)                  # OSM tiles + mask maps, all on their image grids
    assert len(pairs) == len(tiles) + len(mask_pairs(shared)) == 12
    assert all(vm.classes.shape == tuple(img.shape[-2:]) for img, vm in pairs)

def test_vectormap_bad_input(shared):
    from rsworkbench.data.io import read_raster
    img = read_raster(shared/'whu_building'/'train'/'image'/sorted(p.name for p in (shared/'whu_building'/'train'/'image').iterdir())[0])
    with pytest.raises(RSWError, match='no CRS'): grid_of(img)
    with pytest.raises(RSWError, match='not found'): rasterize_features(shared/'nope.geojson', None)

def test_train_save_load_infer(tmp_path):
    pipe = tiny_sgdm()
    b = image_batches(bundled_images()[:2], hr_size=64, scale=16, seed=0)
    r = train_stage1(pipe, MapCrops(sgdm_pairs(maps=False)[:2], 64, 16), tmp_path, max_steps=2, progress=False)
    assert r['step'] == [1, 2] and np.isfinite(r['loss']).all()
    train_stage2(pipe, [next(b)[1] for _ in range(3)], tmp_path, max_steps=5, progress=False)
    up = load_sgdm(16, checkpoint=tmp_path/'checkpoint', num_inference_steps=2)
    lr = next(b)[0]
    sr = up.upscale(lr)
    assert sr.shape == (1, 3, 64, 64) and torch.isfinite(sr).all()
    torch.testing.assert_close(sr, pipe(lr, 16, style='sflow', num_inference_steps=2).images, atol=1e-5, rtol=0)
    with pytest.raises(RSWError, match='missing weights'): load_sgdm(16, checkpoint=tmp_path/'nope')

def test_registry_and_styles():
    spec = list_methods()['sgdm']
    assert spec.scales == (16, 32) and spec.demo is (SHIPPED_SGDM/'model_index.json').exists()
    with pytest.warns(UserWarning, match='RANDOM'): up = get_method('sgdm', 32, num_inference_steps=2, size='tiny')
    assert up.upscale(torch.zeros(1, 3, 2, 2)).shape == (1, 3, 64, 64)
    pipe = tiny_sgdm(); lr = torch.rand(1, 3, 4, 4) * 2 - 1
    vm = VectorMap(np.zeros((64, 64), np.uint8)); vm.classes[:20] = 1
    a = pipe(lr, 16, vm, style='sflow', seed=1, num_inference_steps=2)
    b = pipe(lr, 16, vm, style=torch.rand(1, 3, 24, 40) * 2 - 1, num_inference_steps=2)
    c = pipe(lr, 16, None, style='none', num_inference_steps=2)
    assert a.style_mean.shape == (1, 8) and b.style_mean is not None and c.style_mean is None and c.map_rgb is None

@pytest.mark.slow
def test_train_template_params_take_effect(tmp_path):
    p = run_template(ROOT/'nbs'/'experiments'/'91_sgdm_train.ipynb',
                     dict(steps=2, flow_steps=3, n_styles=2, n_eval=2, eval_steps=2, maps=False, scale=32, fuse='concat', figure_seeds=[5],
                          t_min=900, style_temperature=0.0),
                     'sgdm_train', out_root=tmp_path, progress=False)
    m = load_metrics(p)
    assert m['steps'] == 2 and m['scale'] == 32 and m['fuse'] == 'concat' and m['used_maps'] is False and np.isfinite(m['psnr_y'])
    assert m['conditioning'] == 'class-embedding'                     # tiny backbone without text encoders: the learned ClassPrompt
    assert ck_scale(p) == 32                                          # the training scale is saved with the checkpoint
    assert (p/'checkpoint'/'model_index.json').exists() and (p/'samples'/'figure.png').exists()
    ck = SGDMPipeline.from_pretrained(str(p/'checkpoint'))
    assert ck.encoder.config.fuse == 'concat'
    # t_min > 0: saved with the one-step sampler it was trained for (trailing: t = 999) and the given SFlow temperature
    assert ck.scheduler.config.timestep_spacing == 'trailing' and ck.config.default_steps == 1 and ck.config.style_temperature == 0.0
    ck.scheduler.set_timesteps(ck.config.default_steps); assert ck.scheduler.timesteps.tolist() == [999]
    assert "t_min=900: the pipeline is saved and evaluated with trailing spacing at 1 step" in (p/'executed.ipynb').read_text()
    assert 'figure_seeds = [5]' in (p/'executed.ipynb').read_text()  # injected
    if shared_data_dir() is not None:  # the real Sentinel-2 LR (WorldStrat) was super-resolved too
        assert np.isfinite(m['psnr_y_real_lr']) and np.isfinite(m['psnr_y_real_lr_bicubic'])

@pytest.mark.slow
def test_ablation_template_params_take_effect(tmp_path):
    p = run_template(ROOT/'nbs'/'experiments'/'92_sgdm_ablations.ipynb',
                     dict(out_root=str(tmp_path), fuse_variants=['spade'], style_variants=['gt', 'sflow'], map_variants=['aligned', 'shuffled'],
                          steps=1, flow_steps=2, n_styles=2, n_eval=2, eval_steps=1, scale=16, seeds=[0, 1], spacing='trailing', style_temperature=0.0,
                          holdout_pairs=[0], latent_residual=True),
                     'sgdm_ablations', out_root=tmp_path, progress=False)
    m = load_metrics(p)
    assert m['n_rows'] == 5 and m['n_train_runs'] == 2 and m['scale'] == 16 and m['n_eval'] == 2
    assert all(r['n_seeds'] == 2 and np.isfinite(r['psnr_std']) for r in m['table'].values())
    assert set(m['table']) == {'fusion/spade', 'style/gt', 'style/sflow', 'map/aligned', 'map/shuffled'}
    assert m['table']['fusion/spade']['paper_lpips'] == 0.4344 and m['table']['map/shuffled']['map'] == 'shuffled'
    assert all(np.isfinite(r['psnr']) for r in m['table'].values()) and (p/'ablations.csv').exists()
    # held out: pair 0 (a Portugal tile that is all 'land'; the bundled WHU tile without ../shared): single-class maps carry no layout,
    # so an aligned and a shuffled map are the same input
    assert 0.0 <= m['eval_multiclass_maps'] <= 1.0
    if m['eval_multiclass_maps'] == 0.0: assert m['table']['map/aligned']['psnr'] == m['table']['map/shuffled']['psnr']
    train_runs = list((tmp_path/'sgdm_ablation_train').iterdir())
    assert len(train_runs) == 2 and all(load_metrics(r)['steps'] == 1 for r in train_runs)
    assert all(json.loads((r/'params.json').read_text())['holdout_pairs'] == [0] for r in train_runs)
    assert sorted(json.loads((r/'params.json').read_text())['seed'] for r in train_runs) == [0, 1]
    assert all(json.loads((r/'params.json').read_text())['latent_residual'] is True for r in train_runs)       # passed through to 91
    assert all(json.loads((r/'checkpoint'/'model_index.json').read_text())['latent_residual'] is True for r in train_runs)


def test_shipped_sgdm_near_bicubic_on_held_out_tiles(shared):
    "The embedded default SGDM x16 (residual latent, one-step fine-tune, SFlow mode style, aligned maps) on crops of the held-out WHU tiles: measured +0.01 dB vs bicubic (per crop +0.06, -0.36, +0.21, +0.12: level with bicubic, not above it; the previous checkpoint -0.43, the HR-latent one -1.6); guard: mean above -0.25 dB."
    import torch.nn.functional as F
    from rsworkbench.core import from_pm1
    from rsworkbench.metrics import psnr_y
    from rsworkbench.sgdm.train import sgdm_inputs
    if not (SHIPPED_SGDM/'model_index.json').exists(): pytest.skip('no shipped SGDM in this checkout')
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always'); pipe = load_sgdm(16, 'cpu').pipe
    assert not any('RANDOM' in str(w.message) for w in ws)
    _, ev = split_pairs(sgdm_pairs(True, shared), 2)          # the 2 WHU tiles the shipped model never saw
    eb = map_batches(ev, 128, 16, 1, 1000); samples = [next(eb) for _ in range(4)]
    gains = []
    for i, (lr, hr, _) in enumerate(samples):
        m, sty = sgdm_inputs(samples, i, 'sflow', 'aligned')
        with torch.no_grad(): sr = from_pm1(pipe(lr, 16, m, style=sty, seed=i).images)
        bic = F.interpolate(from_pm1(lr), scale_factor=16, mode='bicubic', align_corners=False).clamp(0, 1)
        gains.append(float(psnr_y(sr, from_pm1(hr)).mean() - psnr_y(bic, from_pm1(hr)).mean()))
    print('SGDM x16 PSNR-Y gains over bicubic (dB):', [round(g, 3) for g in gains])
    assert sum(gains) / len(gains) > -0.25, gains


def test_training_scale_recorded_and_enforced(tmp_path):
    "Issue #28: a x16 checkpoint used to run at x32 without a word; the training scale is now saved and another scale refused."
    pipe = tiny_sgdm()
    b = MapCrops(sgdm_pairs(maps=False)[:1], 64, 16)
    train_stage1(pipe, b, tmp_path, max_steps=1, progress=False)
    ck = tmp_path/'checkpoint'
    assert json.loads((ck/'model_index.json').read_text())['train_scale'] == 16
    back = SGDMPipeline.from_pretrained(str(ck))
    lr = torch.rand(1, 3, 2, 2) * 2 - 1
    with pytest.raises(RSWError, match='trained at 16x but is asked for 32x'): back(lr, 32, num_inference_steps=1)
    with pytest.raises(RSWError, match='trained at 16x'): load_sgdm(32, checkpoint=ck)
    assert load_sgdm(16, checkpoint=ck, num_inference_steps=1).upscale(lr).shape == (1, 3, 32, 32)
    with pytest.raises(RSWError, match='not 32x'): train_stage1(tiny_sgdm(), b, tmp_path/'other', max_steps=1, scale=32)
    assert tiny_sgdm()(lr, 32, num_inference_steps=1).images.shape == (1, 3, 64, 64)   # fresh weights: no recorded scale
    if (SHIPPED_SGDM/'model_index.json').exists():
        assert json.loads((SHIPPED_SGDM/'model_index.json').read_text())['train_scale'] == 16
        with pytest.raises(RSWError, match='trained at 16x'): get_method('sgdm', 32)


def test_class_prompt_goes_through_text_encoder(tmp_path):
    "Issue #28 item 2 (SGDM): with a text encoder the map's class prompt is encoded text; other classes -> other text -> other UNet context and output."
    from rsworkbench.models.backbones import tiny_text_encoders, build_unet, build_vae
    from rsworkbench.sgdm.pipeline import build_sgdm
    te = tiny_text_encoders('sd')
    pipe = tiny_sgdm(text_encoders=te)
    assert pipe.conditioning == 'text-encoder' and tiny_sgdm().conditioning == 'class-embedding'
    lr = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a = VectorMap(np.zeros((64, 64), np.uint8)); a.classes[:, 32:] = 1       # land + building
    b = VectorMap(np.zeros((64, 64), np.uint8)); b.classes[:, 32:] = 2       # land + road
    seen = []
    hk = pipe.unet.register_forward_pre_hook(lambda m, args: seen.append(args[2].clone()))
    try: oa, ob = (pipe(lr, 16, m, style='none', num_inference_steps=1, seed=0) for m in (a, b))
    finally: hk.remove()
    assert oa.prompt != ob.prompt and oa.conditioning == ob.conditioning == 'text-encoder'
    torch.testing.assert_close(seen[0], te.encode(oa.prompt)[0])             # the prompt text reaches the UNet
    torch.testing.assert_close(seen[1], te.encode(ob.prompt)[0])
    assert not torch.allclose(seen[0], seen[1]) and not torch.allclose(oa.images, ob.images)
    # build_sgdm on a backbone folder that holds a text encoder uses it ('auto'); text_encoders=None keeps ClassPrompt
    build_unet('tiny').save_pretrained(tmp_path/'tiny'/'unet'); build_vae('tiny').save_pretrained(tmp_path/'tiny'/'vae')
    te.save_pretrained(tmp_path/'tiny')
    assert build_sgdm('tiny', weights_dir=tmp_path).conditioning == 'text-encoder'
    assert build_sgdm('tiny', weights_dir=tmp_path, text_encoders=None).conditioning == 'class-embedding'
    with pytest.raises(RSWError, match="kind 'sd'"): tiny_sgdm(text_encoders=tiny_text_encoders('sdxl'))
