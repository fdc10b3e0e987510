"""Every pipeline refuses each bad argument in `check_inputs`, before any network runs: forward pre-hooks on every
submodule of every component record the calls, and a bad call must raise an `RSWError` naming the argument with none
recorded. A good call records calls (so the hooks see the networks), and a check moved after a network fails here."""
import numpy as np
import pytest, torch
from rsworkbench.core import RSWError

def _lr(*shape): return torch.rand(*shape, generator=torch.Generator().manual_seed(0)) * 2 - 1

class Recorder:
    "Forward pre-hooks on every submodule of a pipeline's nn.Module components."
    def __init__(self, pipe):
        self.pipe, self.calls = pipe, []
        mods = [m for c in pipe.components.values() if isinstance(c, torch.nn.Module) for m in c.modules()]
        self.hooks = [m.register_forward_pre_hook(self.hook) for m in mods]
        assert mods
    def hook(self, m, args): self.calls.append(type(m).__name__)

def _refused(rec, call, match):
    rec.calls.clear()
    with pytest.raises(RSWError, match=match): call()
    assert rec.calls == [], f"networks ran before the check: {sorted(set(rec.calls))}"

def _runs(rec, call):
    rec.calls.clear()
    with torch.no_grad(): call()
    assert rec.calls, 'the hooks saw no network in a good call'

# ---- TexADiff
@pytest.fixture(scope='module')
def texadiff():
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    torch.set_num_threads(1)
    return Recorder(tiny_pipeline())

class _X2:
    scale = 2
    def upscale(self, x): return torch.nn.functional.interpolate(x, scale_factor=2)

TEXADIFF_BAD = {
    'lr range': (dict(lr=_lr(1, 3, 16, 16) * 3), r'expected \[-1, 1\]'),
    'lr channels': (dict(lr=_lr(1, 4, 16, 16)), r'\(b, 3, h, w\)'),
    'lr nan': (dict(lr=torch.full((1, 3, 16, 16), float('nan'))), 'NaN'),
    'lr size': (dict(lr=_lr(1, 3, 15, 16)), 'not x4-compatible'),
    'lr type': (dict(lr=np.zeros((1, 3, 16, 16))), r'\(b, 3, h, w\) tensor'),
    'steps 0': (dict(num_inference_steps=0), 'num_inference_steps must be an int'),
    'steps float': (dict(num_inference_steps=2.5), 'num_inference_steps must be an int'),
    'guidance < 1': (dict(guidance_scale=0.5), 'guidance_scale must be a number'),
    'guidance str': (dict(guidance_scale='high'), 'guidance_scale must be a number'),
    'psr size': (dict(psr=torch.zeros(1, 3, 32, 32)), 'scale mismatch'),
    'psr range': (dict(psr=torch.full((1, 3, 64, 64), 3.0)), r'psr values lie in'),
    'psr x2': (dict(psr=_X2()), 'scale mismatch'),
    'psr str': (dict(psr='bicubic'), 'psr must be None'),
    'mask size': (dict(mask=torch.ones(1, 1, 32, 32)), 'wrong size'),
    'mask values': (dict(mask=torch.full((1, 1, 64, 64), 0.5)), 'must be binary'),
    'mask type': (dict(mask=[[1]]), 'mask must be a tensor'),
    'mask_variant': (dict(mask_variant='half'), 'mask_variant must be one of'),
    'tau 1.5': (dict(tau=1.5), 'tau must be a number in'),
    'tau 0': (dict(tau=0), 'tau must be a number in'),
    'refine': (dict(refine='yes'), 'refine must be one of'),
    'min_area': (dict(min_area=-1), 'min_area must be an int'),
    'ta_sampling': (dict(ta_sampling=1), 'ta_sampling must be one of'),
    'ta_window': (dict(ta_window='step'), 'ta_window must be one of'),
    't_range order': (dict(t_range=(500, 100)), 't_range must be'),
    't_range scalar': (dict(t_range=100), 't_range must be'),
    'color_fix name': (dict(color_fix='wavlet'), 'color_fix must be one of'),
    'color_fix bool': (dict(color_fix=True), 'color_fix must be one of'),
    'generator': (dict(generator=0), 'generator must be a torch.Generator'),
    'seed negative': (dict(seed=-1), 'seed must be an int'),
    'seed float': (dict(seed=1.5), 'seed must be an int'),
    'latents shape': (dict(latents=torch.zeros(1, 4, 4, 4)), 'latents must be a finite tensor'),
    'strength 0': (dict(strength=0), r'strength must be a number in \(0, 1\]'),
    'strength 1.5': (dict(strength=1.5), r'strength must be a number in \(0, 1\]'),
    'latent_tile odd': (dict(latent_tile=7), 'multiples of 2'),
    'latent_overlap alone': (dict(latent_overlap=2), 'needs latent_tile'),
    'latent_overlap big': (dict(latent_tile=8, latent_overlap=8), 'smaller than'),
    'decode_tile 0': (dict(decode_tile=0), 'decode_tile must be an int'),
    'decode_overlap alone': (dict(decode_overlap=2), 'needs decode_tile'),
    'tile_kind': (dict(tile_kind='box'), 'tile_kind must be one of'),
    'return_dict': (dict(return_dict='no'), 'return_dict must be one of'),
}

@pytest.mark.parametrize('case', list(TEXADIFF_BAD))
def test_texadiff_refuses_before_networks(texadiff, case):
    kw, match = TEXADIFF_BAD[case]
    kw = {'lr': _lr(1, 3, 16, 16), 'num_inference_steps': 2, **kw}
    _refused(texadiff, lambda: texadiff.pipe(**kw), match)

def test_texadiff_strength_needs_ddim():
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    rec = Recorder(tiny_pipeline(scheduler='unipc'))
    _refused(rec, lambda: rec.pipe(_lr(1, 3, 16, 16), num_inference_steps=2, strength=0.5), 'needs a DDIMScheduler')

def test_texadiff_hooks_see_a_good_call(texadiff):
    _runs(texadiff, lambda: texadiff.pipe(_lr(1, 3, 16, 16), num_inference_steps=1, seed=0))

# ---- SlimDiffSR student and teacher
@pytest.fixture(scope='module')
def student():
    from rsworkbench.slim.pipeline import tiny_student
    return Recorder(tiny_student())

@pytest.fixture(scope='module')
def teacher():
    from rsworkbench.slim.pipeline import tiny_teacher
    return Recorder(tiny_teacher())

SLIM_BAD = {
    'lr range': (dict(lr=_lr(1, 3, 8, 8) * 3), r'expected \[-1, 1\]'),
    'lr channels': (dict(lr=_lr(1, 1, 8, 8)), r'\(b, 3, h, w\)'),
    'lr nan': (dict(lr=torch.full((1, 3, 8, 8), float('nan'))), 'NaN'),
    'scale 2': (dict(scale=2), 'trained for x4'),
    'scale float': (dict(scale=4.0), 'scale must be an int'),
    'color_fix bool': (dict(color_fix=True), "old 'adain'"),
    'color_fix name': (dict(color_fix='none'), 'color_fix must be one of'),
    'latent_tile odd': (dict(latent_tile=5), 'multiples of 2'),
    'latent_overlap alone': (dict(latent_overlap=2), 'needs latent_tile'),
    'tile_kind': (dict(tile_kind='box'), 'tile_kind must be one of'),
    'return_dict': (dict(return_dict=None), 'return_dict must be one of'),
}
STUDENT_BAD = {**SLIM_BAD,
    'return_attention': (dict(return_attention='yes'), 'return_attention must be one of'),
    'attention tiled': (dict(return_attention=True, latent_tile=8), 'untiled run'),
}
TEACHER_BAD = {**SLIM_BAD,
    'alpha_mode': (dict(alpha_mode='pixel'), 'alpha_mode must be one of'),
    'alpha_rule': (dict(alpha_rule='nope'), 'alpha_rule must be one of'),
    'alpha_rule predictor': (dict(alpha_rule='predictor'), 'no ᾱ\\* predictor'),
}

@pytest.mark.parametrize('case', list(STUDENT_BAD))
def test_student_refuses_before_networks(student, case):
    kw, match = STUDENT_BAD[case]
    _refused(student, lambda: student.pipe(**{'lr': _lr(1, 3, 8, 8), **kw}), match)

@pytest.mark.parametrize('case', list(TEACHER_BAD))
def test_teacher_refuses_before_networks(teacher, case):
    kw, match = TEACHER_BAD[case]
    _refused(teacher, lambda: teacher.pipe(**{'lr': _lr(1, 3, 8, 8), **kw}), match)

def test_slim_hooks_see_a_good_call(student, teacher):
    for rec in (student, teacher): _runs(rec, lambda: rec.pipe(_lr(1, 3, 8, 8)))

# ---- SGDM
@pytest.fixture(scope='module')
def sgdm():
    from rsworkbench.sgdm.pipeline import tiny_sgdm
    return Recorder(tiny_sgdm())

SGDM_BAD = {
    'lr range': (dict(lr=_lr(1, 3, 4, 4) * 3), r'expected \[-1, 1\]'),
    'lr channels': (dict(lr=_lr(1, 2, 4, 4)), r'\(b, 3, h, w\)'),
    'lr nan': (dict(lr=torch.full((1, 3, 4, 4), float('nan'))), 'NaN'),
    'scale 8': (dict(scale=8), '16x or 32x'),
    'scale float': (dict(scale=16.0), 'scale must be an int'),
    'vmap size': (dict(vmap=np.zeros((32, 32), np.uint8)), 'rasterize'),
    'vmap classes': (dict(vmap=np.full((64, 64), 99, np.uint8)), 'class indices must lie in'),
    'vmap batch': (dict(vmap=np.zeros((2, 64, 64), np.uint8)), 'class arrays for a batch of 1'),
    'vmap tensor channels': (dict(vmap=torch.zeros(1, 1, 64, 64)), 'map tensor is'),
    'vmap tensor range': (dict(vmap=torch.full((1, 3, 64, 64), 5.0)), r'map tensor values lie in'),
    'vmap type': (dict(vmap='roads'), 'vmap must be a VectorMap'),
    'style name': (dict(style='random'), "style must be 'sflow'"),
    'style type': (dict(style=3), "style must be 'sflow'"),
    'style pair': (dict(style=(torch.zeros(1, 8),)), r'must be \(mean, std\)'),
    'style width': (dict(style=(torch.zeros(1, 5), torch.ones(1, 5))), 'style mean must be'),
    'style reference': (dict(style=torch.zeros(1, 1, 16, 16)), 'style reference must be'),
    'steps 0': (dict(num_inference_steps=0), 'num_inference_steps must be an int'),
    'seed none': (dict(seed=None), 'seed must be an int'),
    'seed negative': (dict(seed=-1), 'seed must be an int'),
    'latent_tile odd': (dict(latent_tile=7), 'multiples of 2'),
    'decode_overlap alone': (dict(decode_overlap=2), 'needs decode_tile'),
    'tile_kind': (dict(tile_kind='box'), 'tile_kind must be one of'),
    'color_fix': (dict(color_fix='hist'), 'color_fix must be one of'),
    'return_dict': (dict(return_dict=0), 'return_dict must be one of'),
}

@pytest.mark.parametrize('case', list(SGDM_BAD))
def test_sgdm_refuses_before_networks(sgdm, case):
    kw, match = SGDM_BAD[case]
    _refused(sgdm, lambda: sgdm.pipe(**{'lr': _lr(1, 3, 4, 4), 'scale': 16, 'num_inference_steps': 1, **kw}), match)

def test_sgdm_hooks_see_a_good_call(sgdm):
    _runs(sgdm, lambda: sgdm.pipe(_lr(1, 3, 4, 4), 16, np.zeros((64, 64), np.uint8), num_inference_steps=1))
