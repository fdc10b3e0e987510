"""No wrapper overhead (issue 31, item 2), checked by behaviour, not timing: each method's `upscale` gives exactly what
its bare network gives on the prepared input, runs the network once per call (no tiling of small inputs, no extra
passes) and converts no weights per call."""
import warnings
import numpy as np, pytest, torch
from torch import nn
from rsworkbench.bench import ModuleTime, bare_network, wrapper_overhead
from rsworkbench.core import from_pm1
from rsworkbench.models.baselines import RRDBNet, RRDBUpscaler

def _lr(*shape, seed=0): return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1

class _Applies:
    "Counts `nn.Module._apply` (behind .to/.float/.half/.cuda of a module): a per-call weight conversion shows here."
    def __enter__(self):
        self.n, self._old = 0, nn.Module._apply
        def counted(mod, fn, *a, **kw): self.n += 1; return self._old(mod, fn, *a, **kw)
        nn.Module._apply = counted
        return self
    def __exit__(self, *exc): nn.Module._apply = self._old

def _params(net): return [(p.data_ptr(), p.dtype, p.device) for p in net.parameters()]

def _tiny_rrdb(scale=4, dtype=torch.float32):
    torch.manual_seed(0)
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=scale)
    with torch.no_grad(): net.conv_last.weight.mul_(0.05); net.conv_last.bias.fill_(0.5)
    return nn.Module.to(net, dtype=dtype)

@pytest.mark.parametrize('dtype', [torch.float32, torch.bfloat16])
def test_cnn_upscale_is_its_bare_network(dtype, one_thread):
    "Same bits as net(prepared input) clamped and mapped back; one forward; no weight cast, even with bf16 weights."
    up = RRDBUpscaler(_tiny_rrdb(dtype=dtype), tile=64)   # a tile larger than the input: must not tile
    x, before = _lr(2, 3, 12, 20), _params(up.net)
    with torch.no_grad(): bare = up.net(from_pm1(x).to(dtype)).float().clamp(0, 1) * 2 - 1
    with ModuleTime() as mt, _Applies() as ap: y = up.upscale(x)
    assert torch.equal(y, bare) and y.dtype == x.dtype
    assert mt.calls == 1 and ap.n == 0 and _params(up.net) == before

def test_tiling_only_when_the_input_exceeds_the_tile(one_thread):
    "The forward counter sees tiling: 2 x 2 tiles of an input twice the tile's side, one pass below it."
    up, x = RRDBUpscaler(_tiny_rrdb(), tile=8, tile_pad=2), _lr(1, 3, 16, 16)
    with ModuleTime() as mt: up.upscale(x)
    assert mt.calls == 4
    with ModuleTime() as mt: up.upscale(x[..., :8, :8])
    assert mt.calls == 1

def test_padding_only_where_the_net_needs_it(one_thread):
    "RRDBNet x2 pixel-unshuffles (pads odd sizes); a residual CNN x2 takes any size, so it gets the input unpadded."
    from rsworkbench.models.train import ResidualSRNet
    x = _lr(1, 3, 9, 11)
    assert RRDBUpscaler(_tiny_rrdb(scale=2)).upscale(x).shape[-2:] == (18, 22)
    torch.manual_seed(0); net = ResidualSRNet(scale=2, n_feats=8, n_blocks=1).eval()
    with torch.no_grad(): bare = net(from_pm1(x)).clamp(0, 1) * 2 - 1
    assert torch.equal(RRDBUpscaler(net).upscale(x), bare)
    torch.manual_seed(0); n8 = ResidualSRNet(scale=8, n_feats=8, n_blocks=1).eval()
    assert RRDBUpscaler(n8).upscale(x).shape[-2:] == (72, 88)   # x8 once divided by zero (4 // 8)

def test_shipped_residual_cnn_is_its_bare_network(one_thread):
    "The shipped method from the registry: `bare_network` is its net on the prepared tensor, bit for bit the output."
    from rsworkbench.registry import get_method
    up, x = get_method('residual-cnn', 4), _lr(1, 3, 16, 16)
    fn, what = bare_network(up, x)
    with torch.no_grad(): bare = fn().clamp(0, 1) * 2 - 1
    with ModuleTime() as mt, _Applies() as ap: y = up.upscale(x)
    assert what == 'net forward' and torch.equal(y, bare) and mt.calls == 1 and ap.n == 0

def test_onnx_upscale_is_its_session_run(tmp_path, one_thread):
    "The onnx method adds only the range mapping around `session.run` (same values, no second run)."
    from rsworkbench.deploy import export_onnx, load_onnx
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        export_onnx('rrdbnet', tmp_path/'r.onnx', upscaler=RRDBUpscaler(_tiny_rrdb()))
    up, x = load_onnx(4, checkpoint=tmp_path/'r.onnx'), _lr(1, 3, 10, 14)
    fn, what = bare_network(up, x)
    runs, run = [], up.session.run
    up.session = type('S', (), {'run': lambda self, *a: runs.append(1) or run(*a)})()
    y = up.upscale(x)
    assert what == 'onnxruntime run' and len(runs) == 1
    assert np.array_equal(y.numpy(), fn()[0] * 2 - 1)

def test_student_pipeline_runs_its_net_once(one_thread):
    "The SlimDiffSR student's upscale: one pass of its net (bicubic, padding and colour fix add no module passes)."
    from rsworkbench.slim.pipeline import SlimUpscaler, tiny_student
    up, x = SlimUpscaler(tiny_student()), _lr(1, 3, 12, 12)
    fn, what = bare_network(up, x)
    with ModuleTime() as mt, _Applies() as ap: up.upscale(x)
    assert what == 'student net forward' and mt.calls == 1 and ap.n == 0

def test_wrapper_row_of_a_pipeline_times_its_modules(one_thread):
    "Iterative pipelines: the bare time is the module forwards inside the call, never more than the call."
    from rsworkbench.slim.pipeline import SlimUpscaler, tiny_teacher
    r = wrapper_overhead('slim-teacher', out_size=32, repeats=2, upscaler=SlimUpscaler(tiny_teacher()))
    assert r['kind'] == 'wrapper' and r['bare'] == 'module forwards in the call'
    assert 0 < r['bare_ms'] <= r['latency_ms'] and r['x_bare'] >= 1

def test_bicubic_clamps_its_own_output_in_place(monkeypatch, one_thread):
    "Bicubic = F.interpolate clamped, bit for bit, without a second output-sized tensor (an out-of-place clamp)."
    from rsworkbench.srio import BicubicUpscaler
    x, copies, clamp = _lr(1, 3, 16, 16), [], torch.Tensor.clamp
    ref = torch.nn.functional.interpolate(x, scale_factor=4, mode='bicubic', align_corners=False).clamp(-1, 1)
    monkeypatch.setattr(torch.Tensor, 'clamp', lambda t, *a, **kw: copies.append(t.shape) or clamp(t, *a, **kw))
    y = BicubicUpscaler(4).upscale(x)
    assert torch.equal(y, ref) and y.abs().max() <= 1 and copies == []
