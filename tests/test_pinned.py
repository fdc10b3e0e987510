"""Pinned numbers (diffusers' fast-test habit): each tiny seeded pipeline, run on a fixed seeded input, gives the mean, the
std and four evenly spaced samples recorded once on the CPU, and `return_dict=False` gives the same tensor. A change that
moves these numbers must update them on purpose (and say why in its commit)."""
import numpy as np
import pytest, torch

def _lr(shape, seed=0): return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1

def _texadiff(**kw):
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    lr = _lr((2, 3, 16, 16)); lr[1] = 0.1                                # element 1: flat
    return tiny_pipeline(seed=0), (lr,), dict(num_inference_steps=2, seed=0, **kw)

def _texadiff_ta():
    "10 DDIM steps: TA-sampling holds the sparse latents on steps 6 and 8; element 1 is wholly sparse and skips the UNet."
    from rsworkbench.texadiff.pipeline import tiny_pipeline
    mask = torch.zeros(2, 1, 64, 64); mask[0, :, :32] = 1
    return tiny_pipeline(seed=0), (_lr((2, 3, 16, 16)),), dict(num_inference_steps=10, seed=0, mask=mask)

def _teacher():
    from rsworkbench.slim.pipeline import tiny_teacher
    return tiny_teacher(0), (_lr((1, 3, 16, 16)),), {}

def _student():
    from rsworkbench.slim.train import build_student
    return build_student('tiny', seed=0), (_lr((1, 3, 16, 16)),), {}

def _sgdm():
    from rsworkbench.sgdm.pipeline import tiny_sgdm
    cls = np.zeros((64, 64), np.uint8); cls[16:40, 16:40] = 1; cls[:, 50:56] = 2
    return tiny_sgdm(seed=0), (_lr((1, 3, 4, 4)), 16, cls), dict(style='sflow', num_inference_steps=2, seed=3)

# name: (builder, SR pins, (an intermediate field, its pins))
CASES = {
    'texadiff': (_texadiff, [0.0417677, 0.329732, -0.0796987, 0.078223, 0.0772961, 0.0621625],
                 ('rtdm', [-0.0519719, 0.032897, -0.0502609, -0.0614758, -0.045676, -0.0837676])),
    'texadiff-plain': (lambda: _texadiff(ta_sampling=False, color_fix=None),
                       [-0.00276917, 0.349789, -0.0837059, 0.0454609, -0.089749, -0.0727317], None),
    'texadiff-ta': (_texadiff_ta, [-0.0119175, 0.316114, -0.0788366, 0.075503, 0.0740265, -0.13747], ('saved_unet_evals', 2)),
    'slim-teacher': (_teacher, [0.00580876, 0.43471, -0.231818, -0.242721, 0.229435, 0.0652893], None),
    'slim-student': (_student, [-0.0238991, 0.36006, 0.741356, 0.417967, 0.668727, -1.0], None),
    'sgdm': (_sgdm, [0.00288547, 0.341587, -0.0630571, 0.0239489, -0.0969095, 0.243797],
             ('style_mean', [0.0147754, 0.999951, 1.01112, 0.114692, -0.791074, 0.0595285])),
}

def _stats(t:torch.Tensor) -> torch.Tensor:
    "Mean, std and four evenly spaced samples of the flattened tensor."
    t = t.detach().float().cpu().flatten()
    return torch.cat([torch.stack([t.mean(), t.std()]), t[torch.linspace(0, t.numel() - 1, 4).long()]])

def _check(got, want):
    if isinstance(want, int): assert got == want
    else: torch.testing.assert_close(_stats(got), torch.tensor(want), rtol=1e-4, atol=1e-5)

@pytest.mark.parametrize('name', list(CASES))
def test_pinned_outputs(name, one_thread):
    build, pins, extra = CASES[name]
    pipe, args, kw = build()
    with torch.no_grad(): out = pipe(*args, **kw)
    _check(out.images, pins)
    if extra is not None: _check(getattr(out, extra[0]), extra[1])
    with torch.no_grad(): tup = pipe(*args, return_dict=False, **kw)
    assert isinstance(tup, tuple) and len(tup) == 1
    torch.testing.assert_close(tup[0], out.images, rtol=0, atol=0)
