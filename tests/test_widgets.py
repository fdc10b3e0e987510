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
    rtdm.set(tau=hi, erode=1, dilate=2, min_area=16, fill_holes=True, steps=2)
    assert rtdm.n_steps == 2 and len(rtdm.out.skipped) == 2
    for s in range(rtdm.n_steps): assert rtdm.skipped_updates(s) + int(rtdm.update_mask(s).sum()) == lat[0] * lat[1]
    assert rtdm.total_skipped == sum(rtdm.skipped_updates(s) for s in range(2))
    rtdm.set(min_area=0, tau=0.01)                        # the update masks follow the live mask, without resample()
    assert rtdm.rich_fraction <= f_lo
    with pytest.raises(RSWError, match='step must'): rtdm.update_mask(9)
    with pytest.raises(RSWError, match='tau'): rtdm.set(tau=1.5).mask
    rtdm.set(tau=0.35, erode=1, dilate=2, min_area=16, fill_holes=True, steps=4, step=2, seed=0)

def test_rtdm_defaults_show_ta_sampling(rtdm):
    "Issue 29.3: at its defaults the explorer shows a mixed mask and a TA-sampling step that holds the sparse positions."
    from rsworkbench.widgets import RTDM_DEMO
    from rsworkbench.texadiff.pipeline import SHIPPED_TEXADIFF
    from rsworkbench.core import data_dir
    assert (data_dir()/RTDM_DEMO[0]).exists() and 'shared' not in str(data_dir())   # the default tile is the repository's own data
    assert rtdm.steps == 4 and rtdm.n_steps == 4
    held = [i for i, k in enumerate(rtdm.out.skipped) if k]
    assert held and rtdm.step == held[0]                           # the view opens on a held step
    sparse = lambda: int((rtdm.mask_latent[0, 0] == 0).sum())
    assert rtdm.skipped_updates() == sparse()                      # a held step skips exactly the texture-sparse latent positions
    if (SHIPPED_TEXADIFF/'model_index.json').exists():
        assert 0.15 < rtdm.rich_fraction < 0.85, rtdm.rich_fraction # mixed at τ = config.tau (0.35)
        assert 0 < rtdm.skipped_updates() < rtdm.mask_latent.numel()
    k0 = rtdm.skipped_updates()
    for tau in (0.9, 0.2, 0.35):                                   # τ changes: the update masks are recomputed, never stale
        rtdm.tau = tau
        assert rtdm.skipped_updates() == sparse(), tau
    assert rtdm.skipped_updates() == k0
    sr0 = rtdm.out.images.clone()
    rtdm.resample(); assert rtdm.seed == 1 and not torch.allclose(sr0, rtdm.out.images)   # resample draws new noise
    rtdm.set(steps=2); assert rtdm.step == 1 and rtdm.n_steps == 2                       # the shown step stays within the steps
    rtdm.set(steps=4, step=2, seed=0)
    torch.testing.assert_close(rtdm.out.images, sr0)

def test_rtdm_view_controls(rtdm):
    "steps and resample are controls; a τ change redraws with recomputed update masks; the step slider follows the steps."
    v = rtdm.view(background=False)
    assert {'tau', 'steps', 'step'} <= set(v.controls)
    buttons = [w for w in v.children if hasattr(w, 'children') and any(getattr(b, 'description', '') == 'resample' for b in w.children)]
    assert buttons
    p0 = bytes(v.image.value)
    v.controls['tau'].value = 0.6
    assert bytes(v.image.value) != p0 and rtdm.skipped_updates() == int((rtdm.mask_latent[0, 0] == 0).sum())
    p1 = bytes(v.image.value); buttons[0].children[0].click()
    assert rtdm.seed == 1 and bytes(v.image.value) != p1
    v.controls['steps'].value = 2
    assert v.controls['step'].max == 1 and rtdm.step == 1
    assert v.redrawer.error is None
    rtdm.set(tau=0.35, steps=4, step=2, seed=0)

def test_rtdm_predicted_source(rtdm):
    rtdm.source = 'predicted'
    torch.testing.assert_close(rtdm.rtdm, rtdm.out.rtdm.float().cpu())
    rtdm.source = 'reference'

def test_uncertainty_override(unc):
    o = unc.out
    lat = tuple(4 * n // unc.pipe.vae_factor for n in unc.lr.shape[-2:])   # the latent grid (shipped teacher: x2; tiny: x8)
    assert o.uncertainty.shape == o.alpha.shape == o.timestep.shape == (1, 1, *lat)
    base = unc.set(override=False).sr
    torch.testing.assert_close(base, o.images.float().cpu())
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
    from IPython.core.formatters import PNGFormatter, PlainTextFormatter
    from matplotlib.figure import Figure
    e = request.getfixturevalue(name)
    fig = e.render()
    assert isinstance(fig, Figure)
    assert PNGFormatter()(fig)[:8] == b'\x89PNG\r\n\x1a\n'                   # Jupyter shows render() as a PNG without %matplotlib
    assert '<Figure' not in PlainTextFormatter()(fig)
    v = e.view(background=False); ctrls = e.controls()
    assert v.explorer is e and v.image.value[:4] == b'\x89PNG' and v.image.format == 'png'
    assert list(v.controls) == list(ctrls) and f'rsw-{type(e).__name__}' in v._dom_classes
    attr, w0 = next(iter(v.controls.items()))
    new = {'left': next((n for n in getattr(e, 'names', ()) if n not in (getattr(e, 'left', None), getattr(e, 'right', None))), None),
           'tau': 0.3 if getattr(e, 'tau', 0) != 0.3 else 0.4, 'override': not getattr(e, 'override', False),
           'query': 1 if getattr(e, 'query', 0) != 1 else 2, 'seed': 2 if getattr(e, 'seed', 0) != 2 else 3}[attr]
    p0 = bytes(v.image.value)
    w0.value = new
    assert getattr(e, attr) == new                                         # the control writes the state
    assert bytes(v.image.value) != p0 and v.redrawer.error is None         # ... and the image is redrawn
    slow = [a for a, w in ctrls.items() if hasattr(w, 'continuous_update') and a not in ('position', 'left', 'right')]
    assert all(ctrls[a].continuous_update is False for a in slow), slow    # sliders that run a model update on release

def test_figure_png_any_backend():
    "figure_png draws pyplot-free and pyplot figures whatever the backend, and releases them."
    import matplotlib
    from matplotlib.figure import Figure
    from rsworkbench.widgets import figure_png, ExplorerFigure
    f = Figure(figsize=(1, 1)); f.subplots().plot([0, 1])
    assert figure_png(f)[:4] == b'\x89PNG' and not f.axes                 # cleared afterwards
    import matplotlib.pyplot as plt
    g = plt.figure(figsize=(1, 1)); n = plt.get_fignums()
    assert figure_png(g)[:4] == b'\x89PNG' and g.number not in plt.get_fignums() and len(plt.get_fignums()) == len(n) - 1
    e = ExplorerFigure(figsize=(1, 1)); e.subplots()
    assert e._repr_png_()[:4] == b'\x89PNG' and e.axes and '<Figure' not in repr(e)   # display keeps the figure usable

def test_redraw_latest_state_wins():
    "Issue 29.4: ten control moves during a slow redraw cause one more redraw (of the latest state), not ten; errors show in the status."
    import threading
    import ipywidgets as W
    from rsworkbench.widgets import Explorer, ExplorerFigure
    class Slow(Explorer):
        def __init__(self): self.x, self.gate, self.drawn = 0, threading.Event(), []
        def render(self):
            assert self.gate.wait(20)
            if self.x < 0: raise RSWError('x must be >= 0')
            self.drawn.append(self.x); f = ExplorerFigure(figsize=(1, 1)); f.text(0.5, 0.5, str(self.x)); return f
        def controls(self): return dict(x=W.IntSlider(value=0, min=-5, max=20))
    e = Slow(); e.gate.set(); v = e.view(); e.gate.clear(); e.drawn.clear()
    for i in range(1, 11): v.controls['x'].value = i
    assert v.redrawer.busy
    e.gate.set(); assert v.redrawer.wait(30)
    assert len(e.drawn) <= 2 and e.drawn[-1] == 10, e.drawn
    assert bytes(v.image.value) == e.png()
    v.controls['x'].value = -1; assert v.redrawer.wait(30)
    assert 'x must be' in v.children[-1].value and isinstance(v.redrawer.error, RSWError)

def test_no_progress_bars_and_content_tiles(capsys):
    "Issue 29.4: loading pipelines inside the widgets prints no 'Loading pipeline components' bars; the default tiles hold buildings."
    from rsworkbench.widgets import whu_tiles, _pipe, WHU_TILES
    from rsworkbench.slim.pipeline import SlimDiffSRPipeline, tiny_student, SHIPPED_STUDENT
    _pipe(None, SlimDiffSRPipeline, None, tiny_student, 'QGAMBrowser', SHIPPED_STUDENT)
    err = capsys.readouterr().err
    assert 'Loading pipeline components' not in err
    _, hrs, masks = whu_tiles()
    assert masks.shape == (4, 128, 128) and masks[0].mean() > 0.15 and masks.mean() > 0.05   # today's first-row tiles: 0 % and 1.5 %
    _, _, m2 = whu_tiles(2, 64, 4, offsets=((500, 500), (0, 0)))
    assert m2.shape == (2, 64, 64)                                          # offsets are moved inside the image
    with pytest.raises(RSWError, match='offsets'): whu_tiles(5)

TOUR_CELL_TIMEOUT = 600

def _tour_outputs(nb):
    "(image/png outputs, PNG-holding Image widget models, bare '<Figure' texts, widget model names, all output text) of an executed notebook."
    import base64
    pngs, figs, text = 0, [], []
    for c in nb.cells:
        for o in c.get('outputs', []):
            d = o.get('data', {})
            if 'image/png' in d: pngs += 1
            t = o.get('text', '') if o.get('output_type') == 'stream' else d.get('text/plain', '')
            text.append(t)
            if '<Figure' in t: figs.append(t)
    state = nb.metadata.get('widgets', {}).get('application/vnd.jupyter.widget-state+json', {}).get('state', {})
    images = []
    for mid, m in state.items():
        if m['model_name'] != 'ImageModel': continue
        bufs = {tuple(b['path']): b for b in m.get('buffers', [])}
        b = bufs.get(('value',))
        if b is not None and base64.b64decode(b['data'])[:8] == b'\x89PNG\r\n\x1a\n': images.append(mid)
    return pngs, images, figs, {m['model_name'] for m in state.values()}, '\n'.join(text), state

@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_widgets_tour_renders_images_in_a_fresh_kernel(tmp_path, monkeypatch):
    "Issue 29.1: the tour executed by nbclient in a new kernel, no MPLBACKEND and no %matplotlib: every figure and view is an image."
    import nbformat
    from nbclient import NotebookClient
    from rsworkbench.core import repo_root
    for k in ('MPLBACKEND', 'JPY_PARENT_PID'): monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv('HF_HUB_OFFLINE', '1'); monkeypatch.setenv('IPYTHONDIR', str(tmp_path/'ipython'))
    nb = nbformat.read(repo_root()/'nbs'/'tutorials'/'widgets_tour.ipynb', as_version=4)
    assert not any('%matplotlib' in c.source for c in nb.cells if c.cell_type == 'code')
    NotebookClient(nb, timeout=TOUR_CELL_TIMEOUT, kernel_name='python3', resources={'metadata': {'path': str(tmp_path)}}).execute()
    pngs, images, figs, models, text, state = _tour_outputs(nb)
    assert pngs >= 5, f'{pngs} image/png outputs'                          # render() of each explorer
    assert len(images) >= 5, f'{len(images)} Image widgets holding PNG bytes'   # view() of each explorer
    assert figs == [], figs                                                # no bare '<Figure size ...>' text
    assert 'Loading pipeline components' not in text and 'FloatProgressModel' not in models
    views = [o['data']['application/vnd.jupyter.widget-view+json']['model_id'] for c in nb.cells for o in c.get('outputs', [])
             if 'application/vnd.jupyter.widget-view+json' in o.get('data', {})]
    classes = [set(state[v]['state'].get('_dom_classes', ())) for v in views]
    for name in ('ComparisonSwipe', 'RTDMExplorer', 'UncertaintyExplorer', 'QGAMBrowser', 'StyleSampler'):
        box = [v for v, cl in zip(views, classes) if f'rsw-{name}' in cl]
        assert box, f'no view of {name}'
        kids = [c.removeprefix('IPY_MODEL_') for c in state[box[0]]['state']['children']]
        assert any(k in images for k in kids), f'the {name} view holds no PNG image'
