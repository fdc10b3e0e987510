"The SlimDiffSR student's speed rewrites (`slim.student.set_fast_path`): the reference path's outputs to fp tolerance."
import pytest, torch
import torch.nn as nn
import torch.nn.functional as F
from rsworkbench.slim.student import DSC, NearestUpConv2d, fold_nearest_upsamples, set_fast_path
from rsworkbench.slim.pipeline import shipped_student, tiny_student

@pytest.fixture(scope='module')
def pipe():
    torch.set_num_threads(1)
    return shipped_student() or tiny_student(seed=0)

def _run(pipe, lr, fast):
    set_fast_path(pipe.net, fast)
    try: return pipe(lr).images
    finally: set_fast_path(pipe.net, True)

@pytest.mark.parametrize('shape', [(1, 3, 13, 21), (2, 3, 16, 16), (1, 3, 9, 30)])
def test_shipped_student_fast_path_equals_reference(pipe, shape):
    "Whole pipeline (bicubic, reflect pad to the multiple, one pass, crop, colour fix) at odd and even LR sizes."
    lr = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append((i[0].shape[-1], o.shape[-1], o.is_contiguous(
        memory_format=torch.channels_last)))) for m in pipe.net.modules() if isinstance(m, NearestUpConv2d)]
    try: fast = _run(pipe, lr, True)
    finally:
        for h in hooks: h.remove()
    ref = _run(pipe, lr, False)
    # the fast path really ran: every folded upsample conv read the low-resolution grid and wrote channels-last
    assert seen and all(o == 2 * i and cl for i, o, cl in seen)
    assert not any(isinstance(m, nn.Upsample) for m in pipe.net.modules())
    assert fast.shape == ref.shape == (shape[0], 3, 4 * shape[2], 4 * shape[3]) and fast.is_contiguous()
    assert ref.std() > 0.1
    torch.testing.assert_close(fast, ref, atol=5e-5, rtol=0)

def test_fast_path_keeps_checkpoint_keys(pipe):
    "The folded modules keep the parameters' names: the shipped weights load with nothing missing or unexpected."
    from rsworkbench.slim.taesd import SlimDiffSRNet
    net = pipe.net
    fresh = SlimDiffSRNet.from_config(net.config)
    res = fresh.load_state_dict(net.state_dict(), strict=True)
    assert not res.missing_keys and not res.unexpected_keys
    assert any(isinstance(m, NearestUpConv2d) for m in fresh.decoder)

@pytest.mark.parametrize('bias', [True, False])
@pytest.mark.parametrize('hw', [(1, 1), (5, 8), (7, 3)])
def test_nearest_up_conv_equals_upsample_then_conv(bias, hw):
    "Four 2x2 phase convs on the low-resolution grid = nearest x2 upsampling then the 3x3 conv, outputs and gradients."
    g = torch.Generator().manual_seed(hw[0] * 10 + hw[1])
    conv = nn.Conv2d(6, 5, 3, padding=1, bias=bias)
    with torch.no_grad(): conv.weight.copy_(torch.randn(conv.weight.shape, generator=g))
    x = torch.randn(2, 6, *hw, generator=g).requires_grad_()
    ref = conv(F.interpolate(x, scale_factor=2., mode='nearest'))
    (gx_ref, gw_ref) = torch.autograd.grad(ref.square().sum(), (x, conv.weight))
    up = NearestUpConv2d.from_conv(conv)
    y = up(x)
    (gx, gw) = torch.autograd.grad(y.square().sum(), (x, up.weight))
    torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-5)
    for a, b in ((gx, gx_ref), (gw, gw_ref)):   # fp32 sums in another order: tolerance relative to the largest
        torch.testing.assert_close(a, b, atol=1e-5 * b.abs().max().item(), rtol=1e-4)
    if hw[1] > 1: assert (up(x.flip(-1)) - ref).abs().max() > 1e-2   # a mirrored result would not pass

def test_fold_only_matches_nearest_x2_then_3x3():
    "Bilinear upsampling, other factors and strided or 5x5 convs are left alone."
    keep = [nn.Sequential(nn.Upsample(scale_factor=2, mode='bilinear'), nn.Conv2d(3, 3, 3, padding=1)),
            nn.Sequential(nn.Upsample(scale_factor=3), nn.Conv2d(3, 3, 3, padding=1)),
            nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 3, 5, padding=2)),
            nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(3, 3, 3, stride=2, padding=1))]
    for s in keep: assert [type(m) for m in fold_nearest_upsamples(s)][1] is nn.Conv2d
    s = fold_nearest_upsamples(nn.Sequential(nn.Upsample(scale_factor=2.), nn.Conv2d(3, 3, 3, padding=1)))
    assert [type(m) for m in s] == [nn.Identity, NearestUpConv2d]

def test_dsc_one_vertical_conv_equals_three_paths():
    "DSC's w1·v(h(x)) + w2·v(x) computed as v(w1·h(x) + w2·x), per image weights, odd sizes."
    torch.manual_seed(0)
    d = DSC(16, 24)
    for m in d.modules():
        if isinstance(m, nn.Conv2d): nn.init.normal_(m.weight)
    x = torch.randn(3, 16, 7, 11)
    with torch.no_grad():
        fast = d(x)
        w = torch.sigmoid(d.mlp(x.mean(dim=(2, 3))))[..., None, None]
        ref = d.proj(w[:, 0:1] * d.h(x) + w[:, 1:2] * d.v(d.h(x)) + w[:, 2:3] * d.v(x))  # the paper's three paths
        torch.testing.assert_close(fast, ref, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(set_fast_path(d, False)(x), ref, atol=0, rtol=0)

def test_cpu_bf16_is_an_opt_in_autocast():
    "dtype='bf16' on the CPU keeps fp32 weights and runs under bf16 autocast: close to fp32 (not equal), fp32 out."
    from rsworkbench.registry import get_method
    torch.set_num_threads(1)
    fp32, bf16 = get_method('slim-student', scale=4, device='cpu'), get_method('slim-student', 4, 'cpu', dtype='bf16')
    assert fp32.autocast is None and bf16.autocast is torch.bfloat16
    assert next(bf16.pipe.net.parameters()).dtype == torch.float32
    lr = torch.rand(1, 3, 12, 20, generator=torch.Generator().manual_seed(0)) * 2 - 1
    a, b = fp32.upscale(lr), bf16.upscale(lr)
    assert b.dtype == torch.float32 and b.shape == a.shape
    d = (a - b).abs()
    assert d.max() > 1e-4             # the bf16 path really ran
    assert d.mean() < 5e-3 and d.max() < 0.1, (d.mean(), d.max())
