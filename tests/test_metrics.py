"Metrics across pyiqa/torchvision: the weight-free set runs offline, nothing downloads, and weight resolution (RSW_WEIGHTS, shared heads) reaches the right files."
import time
import numpy as np
import pytest, torch
import torch.nn.functional as F
import rsworkbench.metrics as M
from rsworkbench.metrics import METRICS, WEIGHT_FREE, compute_metrics, evaluate, metric_status, mean_table
from rsworkbench.core import RSWError

PYIQA_FREE = [n for n in WEIGHT_FREE if METRICS[n].pyiqa]

@pytest.fixture
def fresh(monkeypatch, tmp_path):
    "An empty RSW_WEIGHTS and TORCH_HOME, and no metric built before."
    monkeypatch.setenv('RSW_WEIGHTS', str(tmp_path/'w')); (tmp_path/'w').mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'th'))
    monkeypatch.setattr(M, '_BUILT', {})
    return tmp_path/'w'

@pytest.fixture(scope='module')
def real_pair():
    "A 256x256 WHU crop and its x4 bicubic round trip."
    from rsworkbench.core import shared_data_dir
    d = shared_data_dir()
    if d is None: pytest.skip('../shared/data is absent')
    hr = M._read_image(d/'whu_building/val/image/val_0.tif')[..., 128:384, 128:384]
    lr = F.interpolate(hr, scale_factor=0.25, mode='bicubic', antialias=True)
    return F.interpolate(lr, size=(256, 256), mode='bicubic').clamp(0, 1), hr

@pytest.mark.slow
def test_weight_free_set_runs_offline(fresh, real_pair):
    sr, hr = real_pair
    for n in PYIQA_FREE: assert metric_status(n) == (True, 'weight-free')
    times = {}
    for n in PYIQA_FREE:
        r = compute_metrics(sr, hr, [n]); assert not r.attrs['unavailable'], r.attrs
        t = time.perf_counter(); r = compute_metrics(sr, hr, [n]); times[n] = time.perf_counter() - t
        same = compute_metrics(hr, hr, [n])[n].item()
        v = r[n].item(); assert np.isfinite(v), n
        # identical images score best: higher-is-better metrics at their top, lower-is-better near 0
        if METRICS[n].lower_better: assert same < v and abs(same) < 1e-3, (n, same, v)
        else: assert same > v, (n, same, v)
    print({k: f'{v*1000:.0f} ms' for k, v in times.items()})
    assert not list((fresh.parent/'th').rglob('*.pth')), 'nothing may be downloaded or written to the torch hub'

def test_guard_refuses_downloads(fresh):
    import torchvision, pyiqa
    before = torch.hub._hub_dir
    with M._offline({}):
        with pytest.raises(M._NoDownload): torchvision.models.alexnet(weights='IMAGENET1K_V1')
        with pytest.raises(M._NoDownload): pyiqa.create_metric('niqe', device='cpu')
    assert torch.hub._hub_dir == before and torch.load.__name__ == 'load'  # everything restored

def test_unavailable_reasons_and_nan(fresh):
    ok, why = metric_status('lpips')
    assert not ok and 'alexnet-owt-7be5be79.pth' in why and str(fresh) in why
    ok, why = metric_status('niqe'); assert not ok and 'niqe_modelparameters.mat' in why
    sr = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    r = compute_metrics(sr, sr.flip(-1), ['psnr', 'lpips', 'dists', 'musiq', 'maniqa', 'clipiqa', 'niqe', 'fid'])
    assert torch.isfinite(r['psnr']).all()
    for n in ['lpips', 'dists', 'musiq', 'maniqa', 'clipiqa', 'niqe', 'fid']:
        assert r[n].isnan().all() and 'missing' in r.attrs['unavailable'][n], n

def test_metric_failure_is_recorded_not_raised(fresh):
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 24, 24, generator=g); sr = (hr + 0.1 * torch.rand(2, 3, 24, 24, generator=g)).clamp(0, 1)
    ds = evaluate(sr, hr, ['psnr', 'ms_ssim'])  # MS-SSIM's 5 scales need a larger image
    assert np.isfinite(ds.psnr.values).all()
    assert np.isnan(ds.ms_ssim.values).all() and ds.attrs['unavailable']['ms_ssim'].startswith('failed:')
    assert mean_table(ds).set_index('metric').loc['ms_ssim', 'reason'].startswith('failed:')

def _fake_backbone(path, ctor):
    torch.manual_seed(0); torch.save(ctor().state_dict(), path)

@pytest.fixture
def lpips_env(fresh, tmp_path):
    "A random-weight AlexNet under its torchvision name in RSW_WEIGHTS (the real file is not available here)."
    import torchvision
    from rsworkbench.core import shared_data_dir
    if shared_data_dir() is None: pytest.skip('../shared/data (LPIPS heads) is absent')
    _fake_backbone(fresh/'alexnet-owt-7be5be79.pth', torchvision.models.alexnet)
    return fresh

def test_lpips_resolves_rsw_weights_and_shared_head(lpips_env, tmp_path):
    import lpips, torchvision
    from rsworkbench.core import shared_data_dir
    ok, why = metric_status('lpips')
    assert ok and 'alexnet-owt-7be5be79.pth' in why and 'lpips_v0.1/alex.pth' in why
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(2, 3, 64, 64, generator=g); sr = (hr + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).clamp(0, 1)
    ours = compute_metrics(sr, hr, ['lpips'])
    assert not ours.attrs['unavailable'], ours.attrs
    # reference: the lpips package with the same backbone file (through a torch hub dir) and the same head
    hub = tmp_path/'hub'; (hub/'checkpoints').mkdir(parents=True)
    (hub/'checkpoints'/'alexnet-owt-7be5be79.pth').symlink_to(lpips_env/'alexnet-owt-7be5be79.pth')
    old = torch.hub.get_dir(); torch.hub.set_dir(str(hub))
    try: ref = lpips.LPIPS(net='alex', model_path=str(shared_data_dir()/'weights/lpips_v0.1/alex.pth'), verbose=False).eval()
    finally: torch.hub.set_dir(old)
    with torch.no_grad(): want = ref(sr, hr, normalize=True).flatten().double()
    torch.testing.assert_close(ours['lpips'], want, rtol=1e-5, atol=1e-6)
    assert (compute_metrics(hr, hr, ['lpips'])['lpips'].abs() < 1e-6).all()

def test_corrupt_weight_file_is_reported(fresh):
    (fresh/'alexnet-owt-7be5be79.pth').write_bytes(b'not a checkpoint')
    from rsworkbench.core import shared_data_dir
    if shared_data_dir() is None: pytest.skip('../shared/data (LPIPS heads) is absent')
    r = compute_metrics(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), ['psnr', 'lpips'])
    assert r['lpips'].isnan().all() and r.attrs['unavailable']['lpips'].startswith('failed:')
    assert torch.isfinite(r['psnr']).all()

@pytest.mark.slow
def test_dists_and_lpips_vgg_with_local_vgg(fresh):
    import torchvision
    from rsworkbench.core import shared_data_dir
    if shared_data_dir() is None: pytest.skip('../shared/data (heads) is absent')
    _fake_backbone(fresh/'vgg16-397923af.pth', torchvision.models.vgg16)
    g = torch.Generator().manual_seed(3)
    hr = torch.rand(1, 3, 64, 64, generator=g); sr = (hr + 0.1 * torch.randn(1, 3, 64, 64, generator=g)).clamp(0, 1)
    r = compute_metrics(sr, hr, ['dists', 'lpips-vgg'])
    assert not r.attrs['unavailable'], r.attrs
    assert torch.isfinite(r['dists']).all() and torch.isfinite(r['lpips-vgg']).all()
    net = M._BUILT[('dists', 'cpu')].__closure__[0].cell_contents
    want = torch.load(shared_data_dir()/'weights/dists/weights.pt', weights_only=True)
    torch.testing.assert_close(net.alpha.data, want['alpha'])
    assert compute_metrics(hr, hr, ['dists'])['dists'].abs().max() < 1e-4

@pytest.mark.slow
def test_fid_counts_images_and_runs_with_local_weights(fresh, monkeypatch):
    import pyiqa.archs.inception as inc
    orig = inc.load_pretrained_network
    monkeypatch.setattr(inc, 'load_pretrained_network', lambda *a, **k: None)
    torch.manual_seed(0); torch.save(inc.fid_inception_v3().state_dict(), fresh/'pt_inception-2015-12-05-6726825d.pth')
    monkeypatch.setattr(inc, 'load_pretrained_network', orig)
    assert metric_status('fid')[0]
    g = torch.Generator().manual_seed(4)
    hr = torch.rand(6, 3, 32, 32, generator=g); sr = (hr + 0.2 * torch.randn(6, 3, 32, 32, generator=g)).clamp(0, 1)
    ds = evaluate(sr, hr, ['psnr', 'fid'])
    assert 'N=6' in ds.attrs['unavailable']['fid'] and np.isnan(ds.fid.item())
    monkeypatch.setattr(M, 'FID_MIN_IMAGES', 4)
    ds = evaluate(sr, hr, ['psnr', 'fid'])
    assert 'fid' not in ds.attrs['unavailable'] and np.isfinite(ds.fid.item()) and ds.fid.item() > 0
    f = M._BUILT[('fid', 'cpu')]; a = f.features(hr).numpy()  # same set -> 0 with the same extractor
    assert abs(M.frechet_distance(a.mean(0), np.cov(a, rowvar=False), a.mean(0), np.cov(a, rowvar=False))) < 1e-3
    assert mean_table(ds).set_index('metric').loc['fid', 'n'] == 1

@pytest.mark.gpu
def test_cuda_matches_cpu(real_pair):
    sr, hr = real_pair
    names = ['psnr', 'ssim', 'gmsd', 'vsi']
    a, b = compute_metrics(sr, hr, names), compute_metrics(sr, hr, names, device='cuda')
    for n in names: torch.testing.assert_close(a[n], b[n], rtol=1e-4, atol=1e-5)
