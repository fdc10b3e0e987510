"One run identity (issue #33 item 2): a run is its full resolved parameter set; the debug preset; comparable evaluation."
import json, time
from pathlib import Path
import nbformat, pytest
from rsworkbench.core import RSWError
from rsworkbench.experiments import (run_template, run_grid, run_dir_for, resolve_params, debug_values, load_metrics,
                                     is_finished, template_params, evaluate_methods, literal_assignments)

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT/'nbs'/'experiments'
TEMPLATES = sorted(EXP.glob('*.ipynb'))
KERNEL = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}

def _template(path, params_src):
    "A template with the parameters cell `params_src`, whose next cell records every parameter it saw in metrics.json."
    names = sorted(literal_assignments(params_src))
    nb = nbformat.v4.new_notebook(metadata={'kernelspec': KERNEL})
    c = nbformat.v4.new_code_cell(params_src); c.metadata['tags'] = ['parameters']
    nb.cells += [c, nbformat.v4.new_code_cell("from rsworkbench.experiments import save_metrics\n"
                                              f"save_metrics(run_dir, {{k: globals()[k] for k in {names!r}}})")]
    nbformat.write(nb, path)
    return path

def _set_default(path, old, new):
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if 'parameters' in c.metadata.get('tags', []))
    assert old in cell.source; cell.source = cell.source.replace(old, new)
    nbformat.write(nb, path)

def test_changed_default_is_a_new_run(tmp_path):
    "After a template default changed, the same call runs again (new folder) instead of returning the old-default run."
    tpl, out = _template(tmp_path/'t.ipynb', "run_dir = ''\nalpha = 1  # a default that will change\nbeta = 2"), tmp_path/'out'
    rd1 = run_template(tpl, {'beta': 3}, 'ident', out_root=out, progress=False)
    assert load_metrics(rd1)['alpha'] == 1 and load_metrics(rd1)['beta'] == 3
    assert json.loads((rd1/'params.json').read_text()) == {'alpha': 1, 'beta': 3}    # the full set, default included
    assert json.loads((rd1/'run.json').read_text())['overrides'] == {'beta': 3}     # ... and which were overridden
    t0 = time.perf_counter()
    assert run_template(tpl, {'beta': 3}, 'ident', out_root=out) == rd1           # unchanged template: the finished run
    assert time.perf_counter() - t0 < 1.0
    _set_default(tpl, 'alpha = 1', 'alpha = 5')
    assert run_dir_for('ident', resolve_params(tpl, {'beta': 3}), out) != rd1
    rd2 = run_template(tpl, {'beta': 3}, 'ident', out_root=out, progress=False)
    assert rd2 != rd1 and load_metrics(rd2)['alpha'] == 5                            # really ran with the new default
    assert json.loads((rd2/'params.json').read_text()) == {'alpha': 5, 'beta': 3}
    assert load_metrics(rd1)['alpha'] == 1                                            # the old run is kept as it was
    # an explicit value equal to the default is the same run as leaving it out
    assert run_dir_for('ident', resolve_params(tpl, {'alpha': 5, 'beta': 3}), out) == rd2

def test_debug_values_are_read_from_comments(tmp_path):
    src = ("run_dir = ''   # set by run_template\n"
           "steps = 1000   # optimizer steps; range: 1..; debug: 2\n"
           "tag = 'a#b'    # a '#' inside the string is no comment; debug: 'x;y'\n"
           "rows = ['a', 'b',  # long list\n"
           "        'c']  # debug: ['a']\n"
           "lr = 0.1       # no debug value\n"
           "seed = 0")
    tpl = _template(tmp_path/'t.ipynb', src)
    assert debug_values(tpl) == {'steps': 2, 'tag': 'x;y', 'rows': ['a']}
    assert resolve_params(tpl, {'seed': 3}, debug=True) == {'steps': 2, 'tag': 'x;y', 'rows': ['a'], 'lr': 0.1, 'seed': 3}
    assert resolve_params(tpl, {'steps': 7}, debug=True)['steps'] == 7              # an override beats the debug value
    assert resolve_params(tpl, {})['steps'] == 1000                                   # no debug: the defaults
    bad = _template(tmp_path/'bad.ipynb', "run_dir = ''\nsteps = 10  # debug: two")
    with pytest.raises(RSWError, match="debug value of steps, 'two', is not a literal"): debug_values(bad)
    oor = _template(tmp_path/'oor.ipynb', "run_dir = ''\nsteps = 10  # range: 1..; debug: 0")
    with pytest.raises(RSWError, match='parameter steps: 0 is out of range'): resolve_params(oor, {}, debug=True)
    none = _template(tmp_path/'none.ipynb', "run_dir = ''\nsteps = 10")
    with pytest.raises(RSWError, match='has no debug preset'): resolve_params(none, {}, debug=True)

STEPS = ('max_steps', 'steps', 'train_steps', 'flow_steps', 'eval_steps', 'n_batches', 'n_val', 'n_eval', 'n_styles')

@pytest.mark.parametrize('tpl', TEMPLATES, ids=lambda p: p.name)
def test_every_template_declares_a_shrinking_debug_preset(tpl):
    "Each template's debug values are valid and shrink what makes it long: steps, time budgets, patch and batch sizes."
    dbg, defaults = debug_values(tpl), template_params(tpl)
    assert dbg, f'{tpl.name} has no debug values'
    resolve_params(tpl, {}, debug=True)                                               # types and ranges checked
    for k in STEPS:
        if defaults.get(k, 0) > 3: assert k in dbg and dbg[k] <= 3, (tpl.name, k, dbg.get(k))
    for k in ('max_minutes', 'train_minutes'):
        if defaults.get(k, 0) > 1: assert k in dbg and 0 < dbg[k] <= 1, (tpl.name, k)
    for k in ('patch', 'batch', 'train_batch', 'val_size', 'size'):
        if k in dbg: assert dbg[k] <= defaults[k], (tpl.name, k)

def test_debug_run_goes_apart_and_subruns_stay_inside(tmp_path):
    "A debug run lives under debug_<exp>; an empty out_root (where a template puts its sub-runs) points inside it."
    tpl, o = _template(tmp_path/'t.ipynb', "run_dir = ''\nout_root = ''  # where sub-runs go\nsteps = 100  # debug: 2"), tmp_path/'o'
    rd = run_template(tpl, {}, 'sub', out_root=o, progress=False, debug=True)
    m = load_metrics(rd)
    assert rd.parent == o/'debug_sub' and m['steps'] == 2 and m['out_root'] == str(rd.parent/'subruns')
    assert not (o/'sub').exists()                                                     # nothing among the real runs
    real = run_template(tpl, {}, 'sub', out_root=o, progress=False)
    assert real.parent == o/'sub' and load_metrics(real)['steps'] == 100 and load_metrics(real)['out_root'] == ''
    mine = run_template(tpl, {'out_root': str(tmp_path/'mine')}, 'sub', out_root=o, progress=False, debug=True)
    assert load_metrics(mine)['out_root'] == str(tmp_path/'mine')                     # a given out_root is kept
    dirs = run_grid(tpl, {}, {'steps': [1, 3]}, 'sub', out_root=o, progress=False, debug=True)
    assert [load_metrics(d)['steps'] for d in dirs] == [1, 3] and all(d.parent.name == 'debug_sub' for d in dirs)

def test_rsw_train_debug_runs_the_tiny_template(tmp_path):
    from rsworkbench.cli import main
    assert main(['train', 'tiny_template', '--debug', '--out-root', str(tmp_path)]) == 0
    (run,) = (tmp_path/'debug_tiny_template').iterdir()
    m = load_metrics(run)
    assert m['params']['size'] == 16 and m['lr_side'] == 4                            # the debug size reached the kernel
    assert json.loads((run/'run.json').read_text())['debug'] is True and not (tmp_path/'tiny_template').exists()

def test_template_20_debug_preset_evaluates_like_template_80(tmp_path):
    "Template 20's debug preset runs to metrics.json in seconds; its numbers are `evaluate_methods`' (8-bit SR), as in template 80."
    from rsworkbench.models.train import val_pairs
    t0 = time.perf_counter()
    rd = run_template(EXP/'20_train_sr_baseline.ipynb', {}, 'sr_baseline', out_root=tmp_path, progress=False, debug=True)
    print(f'template 20 debug run: {time.perf_counter() - t0:.1f} s')
    m = load_metrics(rd); p = m['params']
    assert rd.parent.name == 'debug_sr_baseline' and m['steps'] == 2 and p['n_feats'] == 8 and is_finished(rd)
    pairs = val_pairs([Path(f) for f in p['val_files']], scale=p['scale'], val_size=p['val_size'])
    tab = evaluate_methods({'bicubic': {}, 'residual-cnn': {'checkpoint': str(rd/'checkpoint')}}, pairs, ('psnr', 'ssim'),
                           p['scale'], 'cpu', progress=False)
    assert abs(m['bicubic_psnr'] - tab.loc['bicubic', ('psnr', 'mean')]) < 1e-6
    assert abs(m['psnr'] - tab.loc['residual-cnn', ('psnr', 'mean')]) < 1e-6
    assert abs(m['ssim'] - tab.loc['residual-cnn', ('ssim', 'mean')]) < 1e-6
    assert m['per_pair']['bicubic']['psnr'] == pytest.approx(tab.attrs['per_pair']['bicubic']['psnr'], abs=1e-9)
