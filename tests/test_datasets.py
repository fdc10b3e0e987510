"data.datasets on the real shared images: listing by licence, stable split, HR tiles from every clean group, paired folders."
import numpy as np, pytest, torch
from torch.utils.data import DataLoader
from rsworkbench.core import RSWError
from rsworkbench.data.datasets import (shared_images, bundled_images, split_files, HRTileDataset, PairedDataset,
                                       CLEAN_GROUPS, RESTRICTED_GROUPS, load_rgb)
from rsworkbench.data.io import read_raster, write_png, write_geotiff

def test_shared_images_groups(shared):
    every, clean = shared_images(), shared_images(clean_only=True)
    assert set(clean) == set(CLEAN_GROUPS) and set(every) - set(clean) <= set(RESTRICTED_GROUPS)
    names = [p.name for v in every.values() for p in v]
    assert 'RGB.byte.tif' in names and 'HR.png' in names and 'ms1.tif' in names
    rel = [str(p.relative_to(shared/g)) for g, v in every.items() for p in v]
    assert not any(w in r for r in rel for w in ('label', 'mask', 'ref/', 'weights')), rel
    assert 'sample_geotiff.tif' not in names and 'sample_geotiff.tif' in [p.name for p in shared_images(['spacenet_solaris'], min_bands=1)['spacenet_solaris']]
    for p in [v[0] for v in every.values()]: assert read_raster(p).sizes['band'] >= 3

def test_split_is_stable(shared):
    files = [p for v in shared_images().values() for p in v]
    tr, va = split_files(files, 0.2, seed=1)
    assert len(va) > 0 and set(tr) | set(va) == set(files) and not set(tr) & set(va)
    tr2, va2 = split_files(sorted(files, key=str, reverse=True), 0.2, seed=1)
    assert set(va2) == set(va)
    assert set(split_files(files, 0.2, seed=2)[1]) != set(va)

def test_hr_tiles_from_every_clean_group(shared):
    files = [v[0] for v in shared_images(clean_only=True).values()]
    ds = HRTileDataset(files, patch=64, scale=4, samples_per_image=2, seed=3)
    b = next(iter(DataLoader(ds, batch_size=len(ds), shuffle=False)))
    assert b['hr'].shape == (len(ds), 3, 64, 64) and b['lr'].shape == (len(ds), 3, 16, 16)
    assert b['hr'].min() >= -1 and b['hr'].max() <= 1 and b['hr'].std() > 0.05
    for i in range(len(ds)): assert b['hr'][i].std() > 0.01, b['path'][i]   # real content, not a flat fill

def test_float_and_16bit_are_stretched(shared):
    for rel in ['spacenet_solaris/rotterdam_pan_ms/ms1.tif', 'sentinel2_dsen2/S2A_MSIL1C_20170527_T33UUB.mat']:
        t = load_rgb(shared/rel)
        assert t.shape[0] == 3 and -1 <= t.min() < -0.9 and 0.9 < t.max() <= 1
    ms = read_raster(shared/'spacenet_solaris/rotterdam_pan_ms/ms1.tif')
    t = load_rgb(shared/'spacenet_solaris/rotterdam_pan_ms/ms1.tif')
    assert np.corrcoef(t[0].flatten(), ms.values[2].flatten())[0, 1] > 0.95     # R first (file is B,G,R,NIR)

def test_degrader_and_gpu_side_mode(shared):
    f = shared/'naip_opengeos'/'m_4709963_se_14_1_20090818.tif'
    calls = []
    def deg(x, scale, seed=None):
        calls.append((tuple(x.shape), scale, seed)); assert 0 <= x.min() and x.max() <= 1
        return torch.nn.functional.avg_pool2d(x, scale)
    it = HRTileDataset([f], patch=32, scale=4, degrader=deg, augment=False)[5]
    assert calls[0][:2] == ((1, 3, 32, 32), 4) and calls[0][2] is not None
    torch.testing.assert_close(it['lr'], torch.nn.functional.avg_pool2d((it['hr'][None] + 1) / 2, 4)[0] * 2 - 1)
    assert set(HRTileDataset([f], patch=32, lr=False)[0]) == {'hr', 'path'}

def test_whu_with_map_and_style(shared):
    d = shared/'whu_building'/'train'
    ds = HRTileDataset([d/'image'/'1.tif'], patch=128, scale=4, maps=[d/'label'/'1.tif'],
                       style_refs=[shared/'naip_opengeos'/'m_4709963_se_14_1_20200831.tif'], samples_per_image=8)
    maps = torch.stack([ds[i]['map'] for i in range(8)])
    assert maps.shape == (8, 1, 128, 128) and set(maps.unique().tolist()) == {-1., 1.}
    assert ds[0]['style'].shape == (3, 128, 128)

def test_paired_real_x2(shared, tmp_path):
    "SpaceNet Rotterdam: the real same-sensor x2 pair (MS 1 m vs PAN 0.5 m), as grey 3-band tiles."
    r = shared/'spacenet_solaris'/'rotterdam_pan_ms'
    (tmp_path/'lr').mkdir(); (tmp_path/'hr').mkdir()
    ms, pan = read_raster(r/'ms1.tif'), read_raster(r/'pan1.tif')
    write_geotiff(tmp_path/'lr'/'rotterdam.tif', ms.values[:3].astype(np.float32), like=ms)
    write_geotiff(tmp_path/'hr'/'rotterdam.tif', np.repeat(pan.values, 3, 0), like=pan)
    ds = PairedDataset(tmp_path/'lr', tmp_path/'hr', scale=2, patch=64, augment=True)
    it = ds[0]; assert it['lr'].shape == (3, 32, 32) and it['hr'].shape == (3, 64, 64)
    with pytest.raises(RSWError, match='size mismatch'): PairedDataset(tmp_path/'lr', tmp_path/'hr', scale=4)

def test_bundled_are_clean_and_small():
    from rsworkbench.core import data_dir
    files = bundled_images()
    assert {p.name for p in files} >= {'demo_naip_rgb.tif', 'landsat_rgb_byte.tif', 'spacenet_atlanta_pan_crop.tif'}
    assert sum(p.stat().st_size for p in data_dir().iterdir()) < 6.5e6
    readme = (data_dir()/'README.md').read_text()
    for p in data_dir().iterdir():
        if p.name != 'README.md': assert f'`{p.name}`' in readme, p.name
    demo = read_raster(data_dir()/'demo_naip_rgb.tif')
    assert demo.shape == (3, 256, 256) and demo.dtype == np.uint8 and demo.rio.crs.to_epsg() == 26914
    for p in (data_dir()/'heldout').iterdir(): assert f'`heldout/{p.name}`' in readme, p.name
    held = read_raster(data_dir()/'heldout'/'naip_2009_demo_rgb.tif')   # the same ground as the demo tile, another year
    assert held.shape == demo.shape and held.rio.crs == demo.rio.crs and np.allclose(held.rio.bounds(), demo.rio.bounds(), atol=5)
    assert not any('heldout' in p.parts for p in files)

def test_demo_tile_is_held_out_of_every_shipped_model():
    "rsw demo's tile is a crop of an image in the held-out split of the data the shipped models trained on ('clean', 'clean+extra')."
    from rsworkbench.data.datasets import sr_images, split_files, shared_images
    if not shared_images(['naip_opengeos']): pytest.skip('needs ../shared/data')
    for d in ('clean', 'clean+extra'):
        train, val = split_files(sr_images(d), 0.2, 0)
        assert 'm_4709963_se_14_1_20090818.tif' in {p.name for p in val} and 'm_4709963_se_14_1_20090818.tif' not in {p.name for p in train}


def test_training_pairs_use_usm_target_for_realesrgan(tmp_path):
    "Issue #28 item 7: HR tiles, patch sampler and TexADiff data give the USM-sharpened target with the Real-ESRGAN degradation (on by default), not with bicubic; held-out targets stay the true HR; the trainers record it."
    import json
    from rsworkbench.data.degrade import Degrader, usm_sharp
    from rsworkbench.models.train import PatchSampler, ResidualSRNet, train_sr
    from rsworkbench.texadiff.train import texadiff_data
    files = bundled_images()[:2]
    plain = HRTileDataset(files, patch=32, scale=4, samples_per_image=2, seed=3)
    real = HRTileDataset(files, patch=32, scale=4, degrader=Degrader('realesrgan', 4, seed=0), samples_per_image=2, seed=3)
    bic = HRTileDataset(files, patch=32, scale=4, degrader=Degrader('bicubic', 4), samples_per_image=2, seed=3)
    for i in range(3):
        want = usm_sharp((plain[i]['hr'][None] + 1) / 2)[0] * 2 - 1
        assert torch.equal(real[i]['hr'], want) and not torch.equal(want, plain[i]['hr'])
        assert torch.equal(bic[i]['hr'], plain[i]['hr'])
    assert real.degradation['usm_target'] is True and bic.degradation['usm_target'] is False
    ps = PatchSampler(files, patch=32, scale=4, degrader=Degrader('realesrgan', 4), seed=0)
    _, hr0 = PatchSampler(files, patch=32, scale=4, seed=0).batch(2); _, hr1 = ps.batch(2)
    assert torch.equal(hr1, usm_sharp(hr0))
    h = train_sr(ResidualSRNet(n_blocks=1, n_feats=8), ps, None, tmp_path/'run', max_steps=1, batch=2, device='cpu', progress=False)
    assert h['degradation']['usm_target'] is True and json.loads((tmp_path/'run'/'history.json').read_text())['degradation']['usm_target'] is True
    dd = texadiff_data('bundled', patch=64, samples_per_image=1)
    assert dd['train'].usm_target and not dd['val'].usm_target and dd['degradation'] == dict(preset='realesrgan', degrader=repr(dd['train'].degrader), usm_target=True)
    assert not texadiff_data('bundled', patch=64, degradation='bicubic')['train'].usm_target
    from rsworkbench.slim.train import slim_data
    sd = slim_data('bundled', 64, samples_per_image=1)
    assert sd['train'].usm_target and not sd['val'].usm_target and not slim_data('bundled', 64, 'bicubic')['train'].usm_target
