"Supervised baseline training: the papermill template end to end with tiny parameters, resume, and the residual-cnn method."
import json
from pathlib import Path
import pytest, torch
from rsworkbench.core import repo_root, RSWError
from rsworkbench.experiments import run_template
from rsworkbench.models.train import ResidualSRNet, PatchSampler, train_sr, val_pairs, load_residual_cnn
from rsworkbench.data.datasets import bundled_images
from rsworkbench.registry import get_method

TEMPLATE = repo_root()/'nbs'/'experiments'/'20_train_sr_baseline.ipynb'

@pytest.mark.slow
def test_template_tiny_run(tmp_path, shared):
    p = run_template(TEMPLATE, dict(n_blocks=2, n_feats=8, patch=32, batch=2, max_steps=3, val_every=2, val_size=48, device='cpu'),
                     'sr_baseline', out_root=tmp_path, progress=False)
    m = json.loads((p/'metrics.json').read_text())
    assert m['steps'] == 3 and m['params']['n_blocks'] == 2          # injected parameters took effect
    assert ResidualSRNet.from_pretrained(str(p/'checkpoint')).config.n_feats == 8
    assert m['n_val'] >= 1 and abs(m['gain_db']) < 5 and (p/'curves.png').exists() and (p/'executed.ipynb').exists()
    # the method loads the trained checkpoint and runs through the registry
    up = get_method('residual-cnn', scale=4, checkpoint=p/'checkpoint')
    assert up.upscale(torch.zeros(1, 3, 8, 8)).shape == (1, 3, 32, 32)

@pytest.mark.slow
def test_template_train_only_freezes_the_rest(tmp_path, shared):
    "train_only: the named parts change, every other tensor stays the init's (a small fine-tune of a large pretrained net)."
    from rsworkbench.models.baselines import RRDBNet
    torch.manual_seed(0); RRDBNet(num_feat=8, num_block=1).save_pretrained(str(tmp_path/'init'))
    p = run_template(TEMPLATE, dict(arch='rrdbnet', n_blocks=1, n_feats=8, patch=32, batch=2, max_steps=2, val_every=1, val_size=48,
                                    device='cpu', init=str(tmp_path/'init'), train_only='conv_hr,conv_last', learning_rate=1e-2),
                     'sr_baseline', out_root=tmp_path, progress=False)
    a = RRDBNet.from_pretrained(str(tmp_path/'init')).state_dict(); b = RRDBNet.from_pretrained(str(p/'checkpoint')).state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith(('conv_hr', 'conv_last')) for k in changed), changed
    with pytest.raises(Exception, match='train_only'):
        run_template(TEMPLATE, dict(arch='rrdbnet', n_blocks=1, n_feats=8, patch=32, batch=2, max_steps=1, val_size=48, device='cpu',
                                    train_only='conv_nope'), 'sr_baseline', out_root=tmp_path, progress=False)

def test_resume_continues_where_it_stopped(tmp_path):
    files = bundled_images()[:2]
    torch.manual_seed(0); a = ResidualSRNet(n_blocks=1, n_feats=8)
    h = train_sr(a, PatchSampler(files, 32, 4, seed=1), val_pairs(files[:1], 4, 32), tmp_path/'r', max_steps=2, batch=2, val_every=1, device='cpu', progress=False)
    assert h['step'] == [1, 2]
    torch.manual_seed(0); b = ResidualSRNet(n_blocks=1, n_feats=8)  # fresh weights: resume must overwrite them from last/
    h = train_sr(b, PatchSampler(files, 32, 4, seed=1), None, tmp_path/'r', max_steps=3, batch=2, device='cpu', progress=False)
    assert h['step'] == [1, 2, 3]
    assert json.loads((tmp_path/'r'/'last'/'train_state.json').read_text())['__dict__'][0] == ['step', 3]   # JSON + safetensors
    assert not (tmp_path/'r'/'last'/'state.pt').exists()   # no pickled objects in the training state

def test_untrained_equals_bicubic_and_bad_checkpoint(tmp_path):
    files = bundled_images()[:1]
    r = train_sr(ResidualSRNet(n_blocks=1, n_feats=8), PatchSampler(files, 32, 4), val_pairs(files, 4, 32), None, max_steps=0, device='cpu', progress=False)
    assert abs(r['val'][-1]['gain_db']) < 1e-6
    with pytest.raises(Exception, match='checkpoint'): load_residual_cnn(4, checkpoint=tmp_path)

@pytest.mark.slow
def test_compare_template(tmp_path, shared):
    tpl = repo_root()/'nbs'/'experiments'/'80_compare_methods.ipynb'
    from rsworkbench.models.train import SHIPPED
    p = run_template(tpl, dict(methods=['bicubic', 'residual-cnn', 'residual-cnn:again'], checkpoints={'residual-cnn:again': str(SHIPPED[4])},
                               versus='residual-cnn', val_size=256, tiles=True, max_files=1, metrics=['psnr', 'ssim']), 'compare',
                     out_root=tmp_path, progress=False)
    m = json.loads((p/'metrics.json').read_text())
    assert list(m['table']) == ['bicubic', 'residual-cnn', 'residual-cnn:again'] and set(m['table']['bicubic']) == {'psnr', 'ssim'}   # injected parameters took effect
    # a 'method:label' row is the same method with its own checkpoint (here the shipped one again): a zero paired difference against `versus`
    v = m['gains_vs']['psnr']
    assert m['versus'] == 'residual-cnn' and set(v) == {'bicubic', 'residual-cnn:again'} and v['residual-cnn:again']['gain'] == 0
    assert abs(v['bicubic']['gain'] + m['gains']['psnr']['residual-cnn']['gain']) < 1e-9 and 'against residual-cnn' in (p/'results.md').read_text()
    with pytest.raises(RSWError, match='not in methods'):   # a checkpoint for a row that is not run is an error, not silently unused
        run_template(tpl, dict(methods=['bicubic'], checkpoints={'residual-cnn': str(SHIPPED[4])}, max_files=1, metrics=['psnr']), 'compare', out_root=tmp_path, progress=False)
    assert 15 < m['table']['bicubic']['psnr'] < 50 and (p/'results.md').exists() and (p/'grid.png').exists()
    assert m['n_files'] == 1 and m['n_pairs'] >= 4 and len(m['per_pair']['names']) == m['n_pairs']   # whole image, several tiles
    g = m['gains']['psnr']['residual-cnn']
    assert g['n'] == m['n_pairs'] and g['ci95_lo'] <= g['gain'] <= g['ci95_hi'] and 0 <= g['wins'] <= g['n']
    assert abs(g['gain'] - (m['table']['residual-cnn']['psnr'] - m['table']['bicubic']['psnr'])) < 1e-6   # paired mean = difference of means
    gi = m['gains_by_image']['psnr']['residual-cnn']
    assert gi['n'] == 1 and isinstance(gi['n'], int) and abs(gi['gain'] - g['gain']) < 1e-6 and gi['ci95_lo'] is None   # one image: no interval (null, strict JSON)

@pytest.mark.slow
def test_compare_template_draws(tmp_path, shared):
    "A random preset: each pair has its own degradation draw, `draws` per tile, and the intervals are over tiles (not pairs)."
    tpl = repo_root()/'nbs'/'experiments'/'80_compare_methods.ipynb'
    p = run_template(tpl, dict(methods=['bicubic', 'residual-cnn'], degradation='slimdiffsr', draws=2, val_size=128, tiles=True,
                               max_files=1, metrics=['psnr'], grid_rows=1), 'compare', out_root=tmp_path, progress=False)
    m = json.loads((p/'metrics.json').read_text())
    names, n = m['per_pair']['names'], m['n_pairs']
    tiles = sorted({x.split('#')[0] for x in names})
    assert n == 2 * len(tiles) >= 4 and {x.split('#')[1] for x in names} == {'0', '1'} and m['params']['draws'] == 2
    b = m['per_pair']['bicubic']['psnr']
    assert all(b[i] != b[i + 1] for i in range(0, n, 2))   # the two draws of a tile differ (one shared draw would repeat the LR)
    assert m['gains']['psnr']['residual-cnn']['n'] == len(tiles)   # paired over tiles, each the mean of its draws
    assert 'each the mean of its 2 degradation draws' in (p/'results.md').read_text()

@pytest.mark.slow
def test_compare_template_research_set(tmp_path, shared):
    "eval_set='research': the research-only groups (never in a clean training split), sgdm_samples (SGDM outputs) left out."
    tpl = repo_root()/'nbs'/'experiments'/'80_compare_methods.ipynb'
    p = run_template(tpl, dict(methods=['bicubic'], val_size=48, eval_set='research', metrics=['psnr']), 'compare', out_root=tmp_path, progress=False)
    m = json.loads((p/'metrics.json').read_text())
    names, files = m['per_pair']['names'], m['files']
    assert m['n_files'] == m['n_pairs'] == len(files) == len(set(names)) > 40   # unique names (dsifn_cd A/B share stems)
    from rsworkbench.data.datasets import shared_images, CLEAN_GROUPS, RESTRICTED_GROUPS
    every = [f for fs in shared_images(list(RESTRICTED_GROUPS)).values() for f in fs]
    assert any('sgdm_samples' in str(f) for f in every) and any('worldstrat/L' in str(f) for f in every)   # the exclusions are not vacuous
    assert not any('sgdm_samples' in f or 'worldstrat/L' in f for f in files), files                        # ... and they took effect
    assert len(files) == sum(not ('sgdm_samples' in str(f) or 'worldstrat/L' in str(f)) for f in every)  # nothing else was dropped
    clean = {str(f) for fs in shared_images(list(CLEAN_GROUPS)).values() for f in fs}
    assert not clean & set(files), files        # none of the training-eligible images
    assert 'research-only' in (p/'results.md').read_text()

def _compare_with_fake_run(tmp_path):
    "Template 80, a fake run folder, and `record(**params)`, which rewrites the run's metrics.json (its training split)."
    run = tmp_path/'fake_run'; (run/'checkpoint').mkdir(parents=True)
    def record(**p): (run/'metrics.json').write_text(json.dumps({'params': p}))
    return repo_root()/'nbs'/'experiments'/'80_compare_methods.ipynb', run, record

@pytest.mark.slow
def test_compare_template_training_split(tmp_path, shared):
    "eval_set='train' scores the training split, and only rows that trained on every evaluated image (a fit diagnosis)."
    from rsworkbench.data.datasets import sr_images, split_files
    from rsworkbench.results import eval_name
    tpl, run, record = _compare_with_fake_run(tmp_path)
    ResidualSRNet(scale=4, n_feats=8, n_blocks=1).save_pretrained(run/'checkpoint')
    record(data='clean+extra', val_fraction=0.2, split_seed=0)   # its training split holds the clean training split
    kw = dict(val_size=48, metrics=['psnr'], grid_rows=1, eval_set='train')
    p = run_template(tpl, dict(methods=['bicubic', 'residual-cnn', 'residual-cnn:mine'], checkpoints={'residual-cnn:mine': str(run/'checkpoint')},
                               **kw), 'compare', out_root=tmp_path, progress=False)
    m = json.loads((p/'metrics.json').read_text())
    train, val = split_files(sr_images('clean'), 0.2, 0)
    assert sorted(m['files']) == sorted(map(str, train)) and not set(m['files']) & set(map(str, val))   # the training images, no held-out one
    assert 'training-split (fit diagnosis' in (p/'results.md').read_text() and eval_name(m).startswith('training split')
    record(data='clean', val_fraction=0.2, split_seed=1)   # another split: it did not train on some of these images
    with pytest.raises(RSWError, match='did not train on'):
        run_template(tpl, dict(methods=['bicubic', 'residual-cnn:mine'], checkpoints={'residual-cnn:mine': str(run/'checkpoint')}, **kw),
                     'compare', out_root=tmp_path, progress=False)
    with pytest.raises(RSWError, match='did not train on'):   # the shipped clean model never saw the research-only images
        run_template(tpl, dict(methods=['bicubic', 'residual-cnn'], data='all', **kw), 'compare', out_root=tmp_path, progress=False)

def test_shipped_residual_cnn_beats_bicubic_on_held_out_tiles(held_out_gains, one_thread):
    "The embedded default residual CNN: loaded without a checkpoint, fp16 on disk, clearly above bicubic on the held-out real crops."
    from rsworkbench.models.train import SHIPPED
    if not (SHIPPED[4]/'config.json').exists(): pytest.skip('no shipped residual-cnn in this checkout')
    from safetensors import safe_open
    with safe_open(str(SHIPPED[4]/'diffusion_pytorch_model.safetensors'), 'pt') as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {'F16'}   # the package stays small
    gains = held_out_gains('residual-cnn')
    print('residual-cnn PSNR-Y gains over bicubic (dB):', [round(g, 3) for g in gains])
    assert min(gains) > 0 and sum(gains) / len(gains) > 0.5, gains

@pytest.mark.slow
def test_compare_template_refuses_rows_trained_on_evaluated_images(tmp_path, shared):
    "Each row's recorded training split is checked against the evaluated images; the shipped clean models pass on the data='all' split."
    tpl, run, record = _compare_with_fake_run(tmp_path)
    record(data='all', val_fraction=0.2, split_seed=0)   # trained on the research-only groups
    with pytest.raises(RSWError, match='was trained on'):
        run_template(tpl, dict(methods=['bicubic', 'residual-cnn'], checkpoints={'residual-cnn': str(run/'checkpoint')}, eval_set='research',
                               metrics=['psnr']), 'compare', out_root=tmp_path, progress=False)
    record(data='clean', val_fraction=0.2, split_seed=1)  # another split of the clean images: it saw a held-out image of split 0
    with pytest.raises(RSWError, match='was trained on'):
        run_template(tpl, dict(methods=['bicubic', 'slim-student'], checkpoints={'slim-student': str(run/'checkpoint')}, metrics=['psnr']),
                     'compare', out_root=tmp_path, progress=False)
    record(data='clean+extra', val_fraction=0.2, split_seed=1)  # 'clean+extra' splits are checked too (they used to pass unchecked)
    with pytest.raises(RSWError, match='was trained on'):
        run_template(tpl, dict(methods=['bicubic', 'slim-student'], checkpoints={'slim-student': str(run/'checkpoint')}, metrics=['psnr']),
                     'compare', out_root=tmp_path, progress=False)
    p = run_template(tpl, dict(methods=['bicubic', 'residual-cnn'], data='all', max_files=1, val_size=48, metrics=['psnr']), 'compare',
                     out_root=tmp_path, progress=False)   # the shipped clean model never saw the data='all' held-out images
    m = json.loads((p/'metrics.json').read_text())
    assert m['n_files'] == 1 and not any('sgdm_samples' in f or 'worldstrat/L' in f for f in m['files'])
    from rsworkbench.data.datasets import sr_images, split_files
    assert set(m['files']) <= {str(f) for f in split_files(sr_images('all'), 0.2, 0)[1]}

@pytest.mark.slow
def test_template_usm_target_off(tmp_path, shared):
    "usm_target=False: a real-world preset trains on the plain HR (the sampler records it), the run id changes; a teacher bank refuses it."
    kw = dict(n_blocks=1, n_feats=8, patch=32, batch=2, max_steps=1, val_every=1, val_size=48, device='cpu', degradation='slimdiffsr', data='bundled')
    p = run_template(TEMPLATE, dict(kw, usm_target=False), 'sr_baseline', out_root=tmp_path, progress=False)
    h = json.loads((p/'history.json').read_text()); m = json.loads((p/'metrics.json').read_text())
    assert h['degradation']['usm_target'] is False and m['params']['usm_target'] is False
    q = run_template(TEMPLATE, kw, 'sr_baseline', out_root=tmp_path, progress=False)   # the default: USM targets, as Real-ESRGAN
    assert json.loads((q/'history.json').read_text())['degradation']['usm_target'] is True and q != p
    with pytest.raises(Exception, match='usm_target=False with a teacher'):
        run_template(TEMPLATE, dict(kw, usm_target=False, teacher='bicubic', bank_size=2), 'sr_baseline', out_root=tmp_path, progress=False)
