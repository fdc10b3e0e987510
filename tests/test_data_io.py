"data.io on the real shared files: exact scaling round trips, georeference through an x4 write, bad input."
import json
import numpy as np, pytest, rasterio, torch
from rsworkbench.core import RSWError
from rsworkbench.data.io import (read_raster, read_sentinel2_mat, to_model_range, from_model_range, ScaleInfo, valid_mask,
                                 write_geotiff, write_image, write_png, ensure_bands, to_rgb)

REAL = ['rasterio/RGB.byte.tif', 'naip_opengeos/m_4709963_se_14_1_20090818.tif', 'naip_opengeos/m_4709963_se_14_1_20200831.tif',
        'spacenet_solaris/atlanta_pan/sample_geotiff.tif', 'spacenet_solaris/rotterdam_pan_ms/ms1.tif',
        'spacenet_solaris/rotterdam_pan_ms/pan1.tif', 'sentinel2_dsen2/S2A_MSIL1C_20170527_T33UUB.mat',
        'sentinel2_dsen2/S2B_MSIL1C_20171022_T49JGM.mat', 'sentinel2_dsen2/S2A_MSIL1C_20170527_T33UUB_10m_rgb_derived.png',
        'whu_building/train/image/0.tif']

def _check_roundtrip(da, **kw):
    x, info = to_model_range(da, **kw)
    assert x.dtype == torch.float32 and x.shape == (1, *da.shape) and x.abs().max() <= 1
    back = from_model_range(x, info)
    assert back.dtype == da.dtype and back.shape == da.shape
    if da.dtype.kind in 'uib': np.testing.assert_array_equal(back, da.values)
    else: np.testing.assert_allclose(back, da.values, rtol=1e-6, atol=1e-6 * (info.hi - info.lo), equal_nan=True)
    assert ScaleInfo.from_json(json.dumps(json.loads(info.to_json()))) == info
    return x, info

@pytest.mark.parametrize('rel', REAL)
def test_roundtrip_real(shared, rel):
    da = read_raster(shared/rel)
    assert da.dims == ('band', 'y', 'x')
    _check_roundtrip(da)
    if da.dtype.kind in 'ui': _check_roundtrip(da, mode='minmax')

def test_native_values_and_georef(shared):
    p = shared/'rasterio'/'RGB.byte.tif'
    da = read_raster(p)
    with rasterio.open(p) as s:
        np.testing.assert_array_equal(da.values, s.read())
        assert da.attrs['transform'] == tuple(s.transform)[:6] and da.attrs['nodata'] == s.nodata == 0
        assert rasterio.crs.CRS.from_wkt(da.attrs['crs']) == s.crs and da.rio.crs == s.crs
        np.testing.assert_allclose(da.rio.transform(), s.transform)
        assert np.isclose(float(da.x[0]), s.xy(0, 0)[0]) and np.isclose(float(da.y[0]), s.xy(0, 0)[1])
    assert da.attrs['path'] == str(p)

def test_nodata_filled_and_restored(shared):
    da = read_raster(shared/'rasterio'/'RGB.byte.tif')
    ok = valid_mask(da)
    assert 0 < ok.mean() < 1 and not ok[0, 0]        # rotated footprint with nodata borders
    x, info = to_model_range(da)
    assert (x[0][:, ~ok] == 0).all()                 # mid grey for the model
    assert (from_model_range(x, info)[:, ~ok] == 0).all()

def test_sentinel2_mat(shared):
    import h5py
    p = shared/'sentinel2_dsen2'/'S2A_MSIL1C_20170527_T33UUB.mat'
    da = read_sentinel2_mat(p, 'im20', bands=[1, 6])
    with h5py.File(p) as f: np.testing.assert_array_equal(da.values[1], f['im20'][5].T)
    assert da.shape == (2, 300, 300) and da.dtype == np.float32 and da.attrs['crs'] is None
    assert read_raster(p, bands=[1, 2, 3]).shape == (3, 600, 600)
    with pytest.raises(RSWError, match='no array'): read_sentinel2_mat(p, 'im5')
    with pytest.raises(RSWError, match='out of range'): read_sentinel2_mat(p, 'im60', bands=[3])

def test_naip_bands(shared):
    p = shared/'naip_opengeos'/'m_4709963_se_14_1_20200831.tif'
    da = read_raster(p, bands=[4, 3, 2])
    with rasterio.open(p) as s: np.testing.assert_array_equal(da.values[0], s.read(4))
    assert to_rgb(read_raster(p)).band.values.tolist() == [1, 2, 3]
    with pytest.raises(RSWError, match='expected 3'): ensure_bands(read_raster(p), 3)

@pytest.mark.parametrize('rel,cog', [('rasterio/RGB.byte.tif', False), ('naip_opengeos/m_4709963_se_14_1_20200831.tif', True),
                                     ('spacenet_solaris/atlanta_pan/sample_geotiff.tif', False)])
def test_write_x4_keeps_georeference(shared, tmp_path, rel, cog):
    da = read_raster(shared/rel).isel(y=slice(0, 100), x=slice(0, 120))
    up = np.repeat(np.repeat(da.values, 4, 1), 4, 2)
    out = write_image(tmp_path/'sr.tif', up, like=da, scale=4, cog=cog)
    b = read_raster(out)
    np.testing.assert_array_equal(b.values, up)
    assert b.attrs['crs'] == da.attrs['crs'] and b.attrs['nodata'] == da.attrs['nodata']
    with rasterio.open(shared/rel) as s, rasterio.open(out) as d:
        w = rasterio.windows.Window(0, 0, 120, 100)
        np.testing.assert_allclose(rasterio.windows.bounds(w, s.transform), d.bounds)
        np.testing.assert_allclose(np.array(s.res) / 4, d.res)
        assert d.crs == s.crs and d.profile['compress'] == 'deflate' and d.profile['tiled']
        if cog: assert d.tags(ns='IMAGE_STRUCTURE').get('LAYOUT') == 'COG'
    assert not [p for p in tmp_path.iterdir() if '.part' in p.name]

def test_sr_roundtrip_through_model_range(shared, tmp_path):
    "read -> model range -> (x2 nearest 'SR') -> back -> write x2 -> read: dtype, values and grid all consistent."
    da = read_raster(shared/'spacenet_solaris'/'atlanta_pan'/'sample_geotiff.tif').isel(y=slice(10, 74), x=slice(20, 84))
    x, info = to_model_range(da)
    sr = from_model_range(torch.nn.functional.interpolate(x, scale_factor=2, mode='nearest'), info)
    b = read_raster(write_geotiff(tmp_path/'sr.tif', sr, like=da, scale=2))
    np.testing.assert_array_equal(b.values[:, ::2, ::2], da.values)
    np.testing.assert_allclose([b.x.values[0] - b.attrs['transform'][0] / 2], [da.x.values[0] - da.attrs['transform'][0] / 2])

def test_bad_input(tmp_path):
    (tmp_path/'bad.tif').write_bytes(b'\x00' * 100)
    (tmp_path/'bad.mat').write_bytes(b'\x00' * 100)
    (tmp_path/'x.bmpx').write_bytes(b'')
    for p, msg in [(tmp_path/'none.tif', 'not found'), (tmp_path/'bad.tif', 'cannot read'), (tmp_path/'bad.mat', 'cannot read'),
                   (tmp_path/'x.bmpx', 'unsupported')]:
        with pytest.raises(RSWError, match=msg): read_raster(p)
    write_png(tmp_path/'a.png', np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(RSWError, match='out of range'): read_raster(tmp_path/'a.png', bands=[0])
    with pytest.raises(RSWError, match='unsupported'): write_image(tmp_path/'a.gif', np.zeros((3, 4, 4), np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.png', 'bad.mat', 'bad.tif', 'x.bmpx']
