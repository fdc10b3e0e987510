"Widgets: drive each explorer's state without a browser (tiny random pipelines, the shipped residual-cnn, bundled data)."
import warnings
import numpy as np
import pytest, torch
from rsworkbench.core import RSWError

@pytest.fixture(scope='module', autouse=True)
def threads():
    n = torch.get_num_threads(); torch.set_num_threads(2)
    warnings.filterwarnings('ignore', message='.*RANDOM weights.*')
    yield
    torch.set_num_threads(n)

@pytest.fixture(scope='module')
def swipe():
    from rsworkbench.widgets import ComparisonSwipe
    return ComparisonSwipe()

@pytest.fixture(scope='module')
def rtdm():
    from rsworkbench.widgets import RTDMExplorer
    return RTDMExplorer()

@pytest.fixture(scope='module')
def unc():
    from rsworkbench.widgets import UncertaintyExplorer
    return UncertaintyExplorer()

@pytest.fixture(scope='module')
def qgam():
    from rsworkbench.widgets import QGAMBrowser
    return QGAMBrowser()

@pytest.fixture(scope='module')
def style():
    from rsworkbench.widgets import StyleSampler
    return StyleSampler()

def test_swipe_positions_and_metrics(swipe):
    from rsworkbench.widgets import _np
    assert swipe.names[0] == 'LR' and swipe.names[-1] == 'HR' and 'residual-cnn' in swipe.names
    swipe.set(left='residual-cnn', right='HR', position=0.0)
    np.testing.assert_allclose(swipe.composite(), _np(swipe.hr))                      # 0: right image
    swipe.position = 1.0
    np.testing.assert_allclose(swipe.composite(), _np(swipe.images['residual-cnn']))  # 1: left image
    swipe.position = 0.5; c = swipe.composite(); w = c.shape[1] // 2
    np.testing.assert_allclose(c[:, :w], _np(swipe.images['residual-cnn'])[:, :w]); np.testing.assert_allclose(c[:, w:], _np(swipe.hr)[:, w:])
    swipe.toggle(); assert (swipe.left, swipe.right) == ('HR', 'residual-cnn')
    assert ('LR', 'HR') in swipe.pairs
    assert list(swipe.metrics.columns) == ['psnr', 'ssim', 'fsim'] and swipe.metrics.notna().all().all()
    assert swipe.metrics.loc['residual-cnn', 'psnr'] > swipe.metrics.loc['LR', 'psnr']
    with pytest.raises(RSWError, match='no state'): swipe.set(nonsense=1)

def test_swipe_precomputed_srs():
    from rsworkbench.widgets import ComparisonSwipe, demo_pair
    lr, hr = demo_pair(4, 32)
    cs = ComparisonSwipe(lr, hr, methods=(), srs={'perfect': hr}, metrics=('psnr',))
    assert cs.names == ['LR', 'perfect', 'HR'] and np.isinf(cs.metrics.loc['perfect', 'psnr'])
    with pytest.raises(RSWError, match='not the HR size'): ComparisonSwipe(lr, hr, methods=(), srs={'bad': lr})

def test_rtdm_tau_morphology_steps(rtdm):
    rtdm.set(erode=0, dilate=0, min_area=0, fill_holes=False)
    lo, hi = (float(v) for v in rtdm.rtdm.quantile(torch.tensor([0.25, 0.75])))
    f_lo, f_hi = rtdm.set(tau=lo).rich_fraction, rtdm.set(tau=hi).rich_fraction
    assert f_lo < f_hi                           # rich = RTDM < τ: lowering τ shrinks the rich-mask fraction
    assert abs(f_lo - 0.25) < 0.05 and abs(f_hi - 0.75) < 0.05
    raw = rtdm.mask.clone()
    rtdm.erode = 2; eroded = rtdm.mask
    assert eroded.sum() < raw.sum()
    rtdm.set(erode=0, min_area=400); assert rtdm.mask.sum() <= raw.sum()
    lat = tuple(4 * n // rtdm.pipe.vae_scale_factor for n in rtdm.lr.shape[-2:])   # the latent grid (shipped: x2 VAE; tiny: x8)
    assert rtdm.mask_latent.shape == (1, 1, *lat)
    rtdm.set(tau=hi, erode=1, dilate=2, min_area=16, fill_holes=True).resample()
    assert rtdm.n_steps == 2 and len(rtdm.out.skipped) == 2
    for s in range(rtdm.n_steps): assert rtdm.skipped_updates(s) + int(rtdm.update_mask(s).sum()) == lat[0] * lat[1]
    assert rtdm.total_skipped == sum(rtdm.skipped_updates(s) for s in range(2))
    rtdm.set(min_area=0, tau=0.01).resample()             # the update masks follow the live mask
    assert rtdm.rich_fraction <= f_lo
    with pytest.raises(RSWError, match='step must'): rtdm.update_mask(9)
    with pytest.raises(RSWError, match='tau'): rtdm.set(tau=1.5).mask
    rtdm.tau = 0.35

def test_rtdm_predicted_source(rtdm):
    rtdm.source = 'predicted'
    torch.testing.assert_close(rtdm.rtdm, rtdm.out.rtdm.float().cpu())
    rtdm.source = 'reference'

def test_uncertainty_override(unc):
    o = unc.out
    lat = tuple(4 * n // unc.pipe.vae_factor for n in unc.lr.shape[-2:])   # the latent grid (shipped teacher: x2; tiny: x8)
    assert o.uncertainty.shape == o.alpha.shape == o.timestep.shape == (1, 1, *lat)
    base = unc.set(override=False).sr
    torch.testing.assert_close(base, o.sr.float().cpu())
    a, b = unc.set(override=True, timestep=50).sr, unc.set(timestep=950).sr
    assert a.shape == base.shape and not torch.allclose(a, b)
    with pytest.raises(RSWError, match='timestep must'): unc.sr_at(-1)

def test_uncertainty_checkpoint(tmp_path):
    from rsworkbench.slim.pipeline import tiny_teacher
    from rsworkbench.widgets import UncertaintyExplorer, demo_pair
    tiny_teacher().save_pretrained(tmp_path/'t')
    ux = UncertaintyExplorer(demo_pair(4, 32)[0], checkpoint=tmp_path/'t')
    assert ux.out.timestep.shape == (1, 1, 4, 4)

def test_qgam_query_changes_map(qgam):
    assert qgam.n_queries == 8 and qgam.masks.shape == (4, 128, 128)
    qgam.set(query=0, image=0); a0 = qgam.attention()
    qgam.query = 5; a5 = qgam.attention()
    assert a0.shape == (128, 128) and not torch.allclose(a0, a5)
    qgam.image = 2; assert not torch.allclose(a5, qgam.attention())
    tr = qgam.tracks()
    assert len(tr) == 8 and set(tr.tracks) <= {'building', 'background'}
    assert ((tr.lift > 1) == (tr.tracks == 'building')).all()
    assert 0 < tr.building_area.iloc[0] < 1
    with pytest.raises(RSWError, match='query must'): qgam.attention(query=8)
    qgam.set(query=0, image=0)

def test_style_seed_and_scale(style):
    m0, s0 = style.sampled(); style.seed = 3; m3, _ = style.sampled()
    assert m0.shape == (8, style.pipe.sflow.config.dim) and not torch.allclose(m0, m3)   # seed changes the SFlow style
    sr3 = style.sr(); style.seed = 0
    assert not torch.allclose(sr3, style.sr())                             # ... and the SR it steers
    style.style_scale = 0.0
    torch.testing.assert_close(style.sampled()[0], style.centre()[0].expand(8, -1))
    style.style_scale = 2.0; m2 = style.sampled()[0]
    torch.testing.assert_close(m2 - style.centre()[0], 2 * (m0 - style.centre()[0]), rtol=1e-4, atol=1e-5)
    style.style_scale = 1.0
    pr = style.projection(); assert pr['set'].shape == (8, 2) and pr['samples'].shape == (8, 2) and pr['reference'].shape == (1, 2)
    assert style.sr('reference').shape == (1, 3, 128, 128)

@pytest.mark.parametrize('name', ['swipe', 'rtdm', 'unc', 'qgam', 'style'])
def test_render_and_view(name, request):
    from matplotlib.figure import Figure
    e = request.getfixturevalue(name)
    assert isinstance(e.render(), Figure)
    v = e.view(); ctrls = e.controls()
    assert len(v.children) == len(ctrls) + 1 and v.explorer is e
    attr, w = next(iter(ctrls.items()))
    w0 = v.children[0]
    new = {'left': 'HR', 'tau': 0.3, 'override': True, 'query': 1, 'seed': 2}[attr]
    w0.value = new
    assert getattr(e, attr) == new                                         # the control writes the state
