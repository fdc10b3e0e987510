"`data.degrade` on real imagery: JPEG against libjpeg (PIL), presets ordered by strength, noise statistics, batches, RNG hygiene, CUDA."
import io
import numpy as np, pytest, torch
import torch.nn.functional as F
from PIL import Image
from rsworkbench.core import img2tensor, RSWError
from rsworkbench.data.degrade import (Degrader, PRESETS, DegradationConfig, bicubic_down, bicubic_up, jpeg_compress,
                                      gaussian_noise, poisson_noise, filter2d, random_mixed_kernels, gaussian_kernel)

def psnr(a, b): return (10 * torch.log10(1 / ((a - b) ** 2).mean())).item()

@pytest.fixture
def hr(shared):
    "Two real 256 px aerial tiles (DSIFN change-detection, Google Earth), (2, 3, 256, 256) in [0, 1]."
    fs = [shared/'dsifn_cd'/'A'/'0_2.png', shared/'dsifn_cd'/'B'/'1_1.png']
    if not all(f.exists() for f in fs): pytest.skip('dsifn_cd tiles are absent')
    return torch.cat([img2tensor(np.array(Image.open(f).convert('RGB'))) for f in fs])

def _pil_jpeg(x, q):
    buf = io.BytesIO()
    Image.fromarray((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(buf, 'JPEG', quality=q, subsampling=2)
    return img2tensor(np.array(Image.open(buf)))

@pytest.mark.parametrize('q', [20, 40, 60])
def test_jpeg_matches_libjpeg(hr, q):
    "Our torch JPEG is close to libjpeg at the same quality with 4:2:0 (differences: box vs fancy chroma resampling, table rounding)."
    x = hr[1:2]
    ours, ref = jpeg_compress(x, q), _pil_jpeg(x, q)
    assert abs(psnr(ours, x) - psnr(ref, x)) < 1.0
    assert psnr(ours, ref) > 36

def test_jpeg_quality_monotone(hr):
    ps = [psnr(jpeg_compress(hr, q), hr) for q in (10, 30, 60, 90, 100)]
    assert ps == sorted(ps) and ps[-1] - ps[0] > 10, ps

@pytest.mark.slow
def test_presets_ordered_by_strength(hr):
    "Average PSNR of bicubic-upsampled LR vs HR over seeds: clean bicubic > SlimDiffSR (milder) > Real-ESRGAN >~ OSEDiff-style (stronger)."
    x = hr[:1]
    m = {n: np.mean([psnr(bicubic_up(Degrader(n)(x, seed=s), 4).clamp(0, 1), x) for s in range(8)]) for n in PRESETS}
    assert m['bicubic'] > m['slimdiffsr'] > m['realesrgan'], m
    assert m['osediff'] < m['realesrgan'] + 0.3, m

@pytest.mark.parametrize('name', list(PRESETS))
@pytest.mark.parametrize('scale', [2, 4, 8])
def test_degrader_real_shapes_and_levels(hr, name, scale):
    lr = Degrader(name, scale=scale)(hr, seed=0)
    assert lr.shape == (2, 3, 256 // scale, 256 // scale) and lr.dtype == hr.dtype
    assert lr.min() >= 0 and lr.max() <= 1
    assert torch.allclose(lr * 255, (lr * 255).round(), atol=1e-4)

def test_bicubic_large_factors(hr):
    for s in (8, 16, 32):
        lr = bicubic_down(hr, s)
        assert lr.shape[-2:] == (256 // s, 256 // s)
        up = bicubic_up(lr, s)
        assert up.shape == hr.shape
    # anti-aliasing: 16x bicubic is close to block averaging, unlike plain (aliased) bicubic sampling
    box = F.avg_pool2d(hr, 16)
    assert (bicubic_down(hr, 16) - box).abs().mean() < (F.interpolate(hr, size=(16, 16), mode='bicubic') - box).abs().mean()

def test_gaussian_noise_level_on_real_image(hr):
    x = hr[:1] * 0.6 + 0.2          # keep away from the clip at 0 and 1
    for sigma in (5., 15., 30.):
        n = gaussian_noise(x, sigma, generator=torch.Generator().manual_seed(0)) - x
        inside = (x + n > 0) & (x + n < 1)
        assert abs(n[inside].std().item() * 255 - sigma) < 0.1 * sigma

def test_poisson_noise_scales(hr):
    x = hr[:1]
    s = [(poisson_noise(x, sc, generator=torch.Generator().manual_seed(0)) - x).std().item() for sc in (0.5, 1., 2.)]
    assert s[0] < s[1] < s[2]
    assert abs(s[2] / s[1] - 2) < 0.3

def test_batch_gives_per_sample_degradations(hr):
    "The same tile repeated 8 times comes out 8 different ways (per-sample kernels, noise, quality), and fast enough batched."
    x = hr[:1].expand(8, -1, -1, -1)
    lr = Degrader('realesrgan')(x, seed=1)
    flat = lr.flatten(1)
    d = torch.cdist(flat, flat)
    assert (d + torch.eye(8) * 1e9).min() > 0

def test_kernels_batch_filtering_matches_loop(hr):
    k = random_mixed_kernels(2, generator=torch.Generator().manual_seed(3))
    both = filter2d(hr, k)
    for i in range(2): assert torch.allclose(both[i], filter2d(hr[i:i + 1], k[i])[0], atol=1e-6)

def test_no_global_rng_use(hr):
    "Output depends only on the seed, never on (or advancing) the global torch RNG."
    x = hr[:1, :, :64, :64]
    torch.manual_seed(123); state = torch.get_rng_state()
    a = Degrader('realesrgan')(x, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(999)
    assert torch.equal(Degrader('realesrgan')(x, seed=5), a)

def test_errors():
    with pytest.raises(RSWError, match='realesrgan'): Degrader('realesrgan_x4')
    with pytest.raises(RSWError, match='divisible'): Degrader('bicubic', scale=3)(torch.rand(1, 3, 32, 32))
    with pytest.raises(RSWError, match='kernel_size_range'): Degrader(DegradationConfig(kernel_size_range=(8, 21)))

@pytest.mark.gpu
def test_cuda_reproducible_and_consistent(hr):
    x = hr.cuda()
    d = Degrader('realesrgan')
    a, b = d(x, seed=0), d(x, seed=0)
    assert torch.equal(a, b) and a.is_cuda and a.shape == (2, 3, 64, 64)
    assert not torch.equal(a, d(x, seed=1))
    g = lambda: torch.Generator('cuda').manual_seed(4)
    assert torch.equal(d(x, generator=g()), d(x, generator=g()))
    # deterministic parts agree across devices
    k = random_mixed_kernels(2, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(filter2d(x, k.cuda()).cpu(), filter2d(hr, k), atol=1e-5)
    assert torch.allclose(jpeg_compress(x, torch.tensor([30., 80.])).cpu(), jpeg_compress(hr, torch.tensor([30., 80.])), atol=2 / 255)
    assert torch.allclose(bicubic_down(x, 8).cpu(), bicubic_down(hr, 8), atol=1e-5)


def _usm_reference(img, weight=0.5, radius=50, threshold=10):
    "BasicSR's OpenCV usm_sharp (basicsr/utils/img_process_util.py) on an HWC float32 image in [0, 1]."
    cv2 = pytest.importorskip('cv2')
    radius += radius % 2 == 0
    blur = cv2.GaussianBlur(img, (radius, radius), 0); residual = img - blur
    soft = cv2.GaussianBlur((np.abs(residual) * 255 > threshold).astype('float32'), (radius, radius), 0)
    return soft * np.clip(img + weight * residual, 0, 1) + (1 - soft) * img

def test_usm_sharp_matches_basicsr_on_real_tile(hr):
    "Issue #28 item 7: the USM target equals BasicSR's (OpenCV) unsharp masking on a real tile; edges change, flat areas do not."
    from rsworkbench.data.degrade import usm_sharp
    x = hr[:, :, :96, :80].contiguous()
    ref = np.stack([_usm_reference(np.ascontiguousarray(t.permute(1, 2, 0).numpy())) for t in x])
    out = usm_sharp(x)
    np.testing.assert_allclose(out.permute(0, 2, 3, 1).numpy(), ref, atol=1e-4)
    assert (out - x).abs().max() > 0.02                                   # real content is sharpened
    flat = torch.full((1, 3, 64, 64), 0.4); flat[..., 20:40, 20:40] += 0.02   # steps below the threshold (5/255 < 10/255)
    assert torch.equal(usm_sharp(flat), flat)

def test_usm_target_default_on_for_realesrgan_off_for_bicubic():
    "Real-ESRGAN-kind presets make training pairs from the USM-sharpened HR by default; bicubic does not; both can be overridden."
    from rsworkbench.data.degrade import usm_sharp
    x = torch.zeros(2, 3, 64, 64); x[..., 32:] = 0.7; x += 0.15
    assert [Degrader(n).usm_target for n in ('realesrgan', 'slimdiffsr', 'osediff', 'bicubic')] == [True, True, True, False]
    lr, t = Degrader('realesrgan', 4).pair(x, seed=0)
    assert torch.equal(t, usm_sharp(x)) and torch.equal(lr, Degrader('realesrgan', 4)(usm_sharp(x), seed=0))
    assert t[0, 0, 0, 31] < x[0, 0, 0, 31] and t[0, 0, 0, 32] > x[0, 0, 0, 32]        # overshoot on both sides of the edge
    assert torch.equal(t[..., :4], x[..., :4])                                         # far from the edge: unchanged
    lr_b, t_b = Degrader('bicubic', 4).pair(x)
    assert torch.equal(t_b, x) and torch.equal(lr_b, Degrader('bicubic', 4)(x))
    assert torch.equal(Degrader(DegradationConfig(usm_target=False)).pair(x, seed=0)[1], x)
