"Deployment: ONNX export of the CNN methods and the SlimDiffSR student, verified through onnxruntime, and the `onnx` method end to end."
import subprocess, sys, warnings
from pathlib import Path
import numpy as np, pytest, torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

def test_student_graph_matches_the_pipeline_through_onnxruntime(tmp_path, one_thread):
    "The whole student path (bicubic, reflect pad, one pass, crop, colour match) in one graph; any batch and size."
    from rsworkbench.deploy import export_onnx, load_onnx
    from rsworkbench.slim.pipeline import tiny_student, SlimUpscaler
    up = SlimUpscaler(tiny_student(seed=3))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore'); rep = export_onnx('slim-student', tmp_path/'s.onnx', upscaler=up)
    assert rep['max_abs_err'] < 1e-4
    ox = load_onnx(4, checkpoint=tmp_path/'s.onnx')
    for shape in [(1, 3, 16, 16), (3, 3, 21, 35)]:
        lr = torch.rand(*shape, generator=torch.Generator().manual_seed(sum(shape))) * 2 - 1
        torch.testing.assert_close(ox.upscale(lr), up.upscale(lr), atol=2e-4, rtol=0)

def test_rsw_sr_with_an_exported_residual_cnn(tmp_path):
    "`rsw export` of the shipped residual CNN, then `rsw sr --method onnx`: the same 8-bit SR as `--method residual-cnn` (±1 level)."
    rsw = str(Path(sys.executable).parent/'rsw')
    src = ROOT/'data'/'landsat_rgb_byte.tif'
    import rasterio
    with rasterio.open(src) as ds: img = ds.read(window=((0, 48), (0, 64)))
    Image.fromarray(np.moveaxis(img[:3], 0, -1)).save(tmp_path/'lr.png')
    r = subprocess.run([rsw, 'export', 'residual-cnn', str(tmp_path/'cnn.onnx')], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    for m, extra in (('onnx', ['--checkpoint', str(tmp_path/'cnn.onnx')]), ('residual-cnn', [])):
        r = subprocess.run([rsw, 'sr', str(tmp_path/'lr.png'), str(tmp_path/f'{m}.png'), '--method', m, '--scale', '4', *extra],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-2000:]
    o, t = (np.asarray(Image.open(tmp_path/f'{m}.png')).astype(int) for m in ('onnx', 'residual-cnn'))
    assert o.shape == t.shape == (192, 256, 3) and np.abs(o - t).max() <= 1
