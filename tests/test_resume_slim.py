"""Resume of the SlimDiffSR trainers on the shared loop (`rsworkbench.loop`): a run done in pieces (stopped with
`stop_at`, then a freshly built trainer resumed from `last/`) reaches the weights, the whole resume state and the losses
of a run that never stopped, bit for bit on the CPU."""
import json
import numpy as np, pytest, torch
from safetensors.torch import load_file
from rsworkbench.core import RSWError
from rsworkbench.loop import STATE_FILES, unflatten_state
from rsworkbench.slim.pipeline import tiny_teacher, tiny_student
from rsworkbench.slim.train import train_teacher, train_student, synthetic_tiles

TEACHER = dict(batch=1, estimator_steps=2, lambda_lpips=0.0, discriminator='conv', unet_rank=4, vae_rank=4,
               device='cpu', progress=False)
STUDENT = dict(batch=1, lambda_lpips=0.0, discriminator='conv', teacher_alpha_mode='variance', device='cpu',
               progress=False)


def _same_resume_state(a, b):
    "Every tensor (weights, optimizer moments, RNG states) and every other value of two `last/` folders is identical."
    ta, tb = load_file(str(a/'last'/STATE_FILES[0])), load_file(str(b/'last'/STATE_FILES[0]))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    assert json.loads((a/'last'/STATE_FILES[1]).read_text()) == json.loads((b/'last'/STATE_FILES[1]).read_text())


def _state_names(run):
    "The names of the objects a run's `last/` resume state holds."
    last = run/'last'
    tree = unflatten_state(json.loads((last/STATE_FILES[1]).read_text()), load_file(str(last/STATE_FILES[0])))
    return list(tree['state'])


def _same_modules(*pairs):
    for x, y in pairs:
        sx, sy = x.state_dict(), y.state_dict()
        assert sx.keys() == sy.keys() and all(torch.equal(sx[k], sy[k]) for k in sx)


def _same_history(ha, hb, steps):
    assert ha['step'] == hb['step'] == list(range(1, steps + 1))
    assert set(ha['series']) == set(hb['series'])
    for k in ha['series']: np.testing.assert_array_equal(ha[k], hb[k])   # nan (a phase's unused terms) equals nan


def test_teacher_resumes_bit_exact(tmp_path, one_thread):
    "Both phases (estimator warm-up, then LoRA + predictor + discriminator) in three pieces = at once."
    ds = synthetic_tiles(4, 32)
    whole = tiny_teacher(); ha = train_teacher(whole, ds, tmp_path/'a', max_steps=4, **TEACHER)
    # stopped inside the warm-up and inside the teacher phase; the later pieces build their new parts (LoRA, predictor,
    # discriminator) from another seed: everything they train with must come back from last/
    for stop, seed in ((1, 0), (3, 7), (None, 7)):
        pieced = tiny_teacher()
        hb = train_teacher(pieced, ds, tmp_path/'b', max_steps=4, stop_at=stop, seed=seed, **TEACHER)
    _same_history(ha, hb, 4)
    assert np.isfinite(ha['est'][:2]).all() and np.isnan(ha['est'][2:]).all() and np.isfinite(ha['l1'][2:]).all()
    assert np.isfinite(ha['d'][2:]).all()   # the discriminator trained in the teacher phase
    _same_modules((whole.unet, pieced.unet), (whole.vae, pieced.vae), (whole.estimator, pieced.estimator),
                  (whole.predictor, pieced.predictor))
    _same_resume_state(tmp_path/'a', tmp_path/'b')
    want = ['disc', 'estimator', 'opt_d', 'opt_e', 'opt_g', 'predictor', 'unet', 'vae']
    assert sorted(_state_names(tmp_path/'b')) == want
    fresh = tiny_teacher()   # and training moved the weights (the comparisons above are not between untouched models)
    assert any(not torch.equal(p, q) for p, q in zip(fresh.estimator.parameters(), whole.estimator.parameters()))


def test_student_resumes_bit_exact(tmp_path, one_thread):
    "MSE + MMD distillation (adapters, seeded MMD positions) with a discriminator, in three pieces = at once."
    ds = synthetic_tiles(4, 32)
    whole = tiny_student(); ha = train_student(whole, tiny_teacher(), ds, tmp_path/'a', max_steps=3, **STUDENT)
    for stop, init in ((1, 0), (2, 5), (None, 5)):   # later pieces start from another init: all must come from last/
        pieced = tiny_student(init)
        hb = train_student(pieced, tiny_teacher(), ds, tmp_path/'b', max_steps=3, stop_at=stop, **STUDENT)
    _same_history(ha, hb, 3)
    assert all(v > 0 for v in ha['mse']) and all(v > 0 for v in ha['mmd'])
    _same_modules((whole.net, pieced.net))
    _same_resume_state(tmp_path/'a', tmp_path/'b')
    assert sorted(_state_names(tmp_path/'b')) == ['disc', 'distill', 'net', 'opt', 'opt_d']
    assert any(not torch.equal(p, q) for p, q in zip(tiny_student(5).net.parameters(), whole.net.parameters()))


def test_old_resume_state_refused(tmp_path):
    "A `last/` with the pickled state.pt of runs from before the shared loop is refused, not half-loaded."
    (tmp_path/'last').mkdir(); (tmp_path/'last'/'state.pt').write_bytes(b'')
    with pytest.raises(RSWError, match='old format'):
        train_student(tiny_student(), None, synthetic_tiles(2, 32), tmp_path, max_steps=1, distill='none', **STUDENT)
