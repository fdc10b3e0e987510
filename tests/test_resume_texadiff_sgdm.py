"""TexADiff and SGDM trainers on the shared loop: a run done in pieces (stopped with `stop_at`, each piece a freshly
built trainer resumed from `last/`) ends bit-identical to the uninterrupted run, losses included; old pickled resume
folders are refused."""
from pathlib import Path
import pytest, torch
from rsworkbench.core import RSWError, seed_everything
from rsworkbench.data.datasets import HRTileDataset, bundled_images
from rsworkbench.data.degrade import Degrader

Q = dict(progress=False)

@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

def _ds(): return HRTileDataset(bundled_images()[:2], patch=32, scale=4, degrader=Degrader('bicubic', 4, seed=0),
                                samples_per_image=2, seed=0)

def _same(*pairs):
    "Every tensor of each (module, module) pair equal, bit for bit."
    for a, b in pairs:
        sa, sb = a.state_dict(), b.state_dict()
        assert list(sa) == list(sb)
        bad = [k for k in sa if not torch.equal(sa[k], sb[k])]
        assert not bad, bad[:5]

def _perturb(*modules):
    "Move every trainable weight: whatever the resumed run ends with must come from last/."
    with torch.no_grad():
        for m in modules:
            for p in m.parameters(): p.add_(0.5)

def test_texadiff_resume_bit_exact(tmp_path):
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    from rsworkbench.texadiff.train import train_texadiff
    ds, kw = _ds(), dict(max_steps=3, batch=2, learning_rate=1e-3, perceptual='gmsd', seed=0, **Q)
    def run(pipe, out, stop=None): return train_texadiff(pipe, ds, out, stop_at=stop, **kw)
    full = tiny_pipeline(seed=0); hist = run(full, tmp_path/'a')
    for i, stop in enumerate((1, 2, None)):
        pipe = tiny_pipeline(seed=0)
        if i: _perturb(pipe.control, pipe.unet.up_blocks[0])   # trainable parts: restored from last/
        hp = run(pipe, tmp_path/'b', stop)
    assert hp['step'] == [1, 2, 3] and hp['loss'] == hist['loss'] and hp['mse'] == hist['mse']
    _same((full.unet, pipe.unet), (full.control, pipe.control))
    # the test is not trivially true: another seed gives other weights
    other = tiny_pipeline(seed=0); train_texadiff(other, ds, None, **{**kw, 'seed': 1})
    assert not torch.equal(other.control.zero_out.weight, full.control.zero_out.weight)

def test_texadiff_old_state_refused(tmp_path):
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    from rsworkbench.texadiff.train import train_texadiff
    (tmp_path/'last').mkdir(); (tmp_path/'last'/'state.pt').write_bytes(b'')
    with pytest.raises(RSWError, match='old format'):
        train_texadiff(tiny_pipeline(seed=0), _ds(), tmp_path, max_steps=1, batch=1, perceptual='gmsd', **Q)

def test_predictor_resume_bit_exact(tmp_path):
    from rsworkbench.texadiff.pipeline import tiny_pipeline, TINY_PREDICTOR
    from rsworkbench.texadiff.rtdm import RTDMPredictor
    from rsworkbench.texadiff.train import train_predictor
    ds, psr = _ds(), tiny_pipeline(seed=0)
    kw = dict(max_steps=4, batch=2, learning_rate=3e-3, perceptual='gmsd', **Q)
    def net(seed): seed_everything(seed); return RTDMPredictor(**TINY_PREDICTOR)
    full = net(0); hist = train_predictor(full, ds, psr, tmp_path/'a', **kw)
    for stop, seed in ((2, 0), (3, 7), (None, 8)):   # later pieces start from other weights: all state comes from last/
        part = net(seed); hp = train_predictor(part, ds, psr, tmp_path/'b', stop_at=stop, **kw)
    assert hp['step'] == [1, 2, 3, 4] and hp['loss'] == hist['loss'] and hp['mask_acc'] == hist['mask_acc']
    _same((full, part))

def test_sgdm_stage1_resume_bit_exact(tmp_path):
    from rsworkbench.sgdm.pipeline import tiny_sgdm
    from rsworkbench.sgdm.train import train_stage1, MapCrops, sgdm_pairs
    crops = MapCrops(sgdm_pairs(maps=True)[:2], 64, 16, seed=0)
    # style drops draw from the global RNG too; ckpt_every=2 also saves last/ inside a piece
    kw = dict(max_steps=3, batch=2, learning_rate=1e-3, style_drop=0.5, ckpt_every=2, **Q)
    full = tiny_sgdm(0); hist = train_stage1(full, crops, tmp_path/'a', **kw)
    for i, stop in enumerate((1, 2, None)):
        pipe = tiny_sgdm(0)
        if i: _perturb(pipe.encoder, pipe.adapter, pipe.prompt)
        hp = train_stage1(pipe, crops, tmp_path/'b', stop_at=stop, **kw)
    assert hp['step'] == [1, 2, 3] and hp['loss'] == hist['loss'] and hp['trainable'] == hist['trainable']
    _same(*[(getattr(full, n), getattr(pipe, n)) for n in ('unet', 'encoder', 'adapter', 'prompt')])
    assert (tmp_path/'b'/'checkpoint'/'model_index.json').exists() and (tmp_path/'b'/'last'/'train_state.json').exists()

def test_sgdm_stage1_old_state_refused(tmp_path):
    from rsworkbench.sgdm.pipeline import tiny_sgdm
    from rsworkbench.sgdm.train import train_stage1, MapCrops, sgdm_pairs
    (tmp_path/'state.pt').write_bytes(b'')
    with pytest.raises(RSWError, match='old format'):
        train_stage1(tiny_sgdm(0), MapCrops(sgdm_pairs(maps=False)[:1], 64, 16), tmp_path, max_steps=1, **Q)

def test_sgdm_stage2_resume_bit_exact(tmp_path):
    from rsworkbench.sgdm.pipeline import tiny_sgdm, SGDMPipeline
    from rsworkbench.sgdm.train import train_stage2, MapCrops, sgdm_pairs
    from rsworkbench.data.datasets import batch_at
    crops = MapCrops(sgdm_pairs(maps=False)[:2], 64, 16, seed=0)
    hrs = [batch_at(crops, i, 2)['hr'] for i in range(3)]
    kw = dict(max_steps=12, learning_rate=1e-2, batch_size=4, **Q)
    full = tiny_sgdm(0); hist = train_stage2(full, hrs, tmp_path/'a', **kw)
    for i, stop in enumerate((5, None)):
        pipe = tiny_sgdm(0)
        if i: _perturb(pipe.sflow)
        hp = train_stage2(pipe, hrs, tmp_path/'b', stop_at=stop, **kw)
    assert hp['step'] == list(range(1, 13)) and hp['loss'] == hist['loss'] and hp['n_styles'] == 6
    _same((full.sflow, pipe.sflow))
    back = SGDMPipeline.from_pretrained(str(tmp_path/'b'/'checkpoint'))   # the pipeline with the fitted flow
    _same((back.sflow, full.sflow))
