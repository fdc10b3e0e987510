"Papermill runs of the experiment templates with tiny parameters: run folders, injection, skipping, grids, collect, failures."
import json, time
from pathlib import Path
import nbformat, pytest, xarray as xr
from rsworkbench.core import RSWError
from rsworkbench.experiments import (run_template, run_grid, expand_grid, run_dir_for, load_metrics, collect,
                                     collect_frame, ablation_table, resolve_params)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT/'nbs'/'experiments'/'00_tiny_template.ipynb'

def _nb(tmp_path, *cells, name='t.ipynb'):
    "A template from (source, tags) pairs."
    nb = nbformat.v4.new_notebook(metadata={'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}})
    for src, tags in cells:
        c = nbformat.v4.new_code_cell(src)
        if tags: c.metadata['tags'] = tags
        nb.cells.append(c)
    p = tmp_path/name; nbformat.write(nb, p)
    return p

def test_run_template_injects_writes_and_skips(tmp_path):
    params = {'scale': 2, 'size': 16, 'seed': 3}
    rd = run_template(TINY, params, 'tiny', out_root=tmp_path, progress=False)
    assert rd == run_dir_for('tiny', resolve_params(TINY, params), tmp_path) and rd.parent == tmp_path/'tiny'
    for f in ['params.json', 'executed.ipynb', 'metrics.json']: assert (rd/f).exists(), f
    assert json.loads((rd/'params.json').read_text()) == params   # the full set (here every parameter was given)
    m = load_metrics(rd)
    assert m['params'] == params            # the template saw the injected values, not its defaults (4, 32, 0)
    assert m['lr_side'] == 8 and 20 < m['psnr_y'] < 80
    nb = nbformat.read(rd/'executed.ipynb', as_version=4)
    injected = [c for c in nb.cells if 'injected-parameters' in c.metadata.get('tags', [])]
    assert len(injected) == 1 and f'run_dir = "{rd}"' in injected[0].source
    # second call: finished run, nothing re-executed
    mtime = (rd/'executed.ipynb').stat().st_mtime_ns
    t0 = time.perf_counter()
    assert run_template(TINY, params, 'tiny', out_root=tmp_path) == rd
    assert time.perf_counter() - t0 < 1.0
    assert (rd/'executed.ipynb').stat().st_mtime_ns == mtime
    # skip_finished=False runs it again
    run_template(TINY, params, 'tiny', out_root=tmp_path, progress=False, skip_finished=False)
    assert (rd/'executed.ipynb').stat().st_mtime_ns != mtime and load_metrics(rd)['params'] == params

def test_bad_params_fail_before_running(tmp_path):
    with pytest.raises(RSWError, match=r"no parameters \['scael'\]"): run_template(TINY, {'scael': 2}, 'tiny', out_root=tmp_path)
    with pytest.raises(RSWError, match='do not pass run_dir'): run_template(TINY, {'run_dir': 'x'}, 'tiny', out_root=tmp_path)
    with pytest.raises(RSWError, match='not registered'):
        run_template(TINY, {'scale': 2}, 'tiny', out_root=tmp_path, kernel_name='no-such-kernel-xyz')
    assert not (tmp_path/'tiny').exists() or not any((tmp_path/'tiny').rglob('metrics.json'))

@pytest.mark.slow
def test_grid_collect_and_ablation(tmp_path):
    grid = {'scale': [2, 4], 'seed': [0, 1]}
    assert len(expand_grid({'size': 16}, grid)) == 4
    dirs = run_grid(TINY, {'size': 16}, grid, 'g', out_root=tmp_path, progress=False)
    assert len(dirs) == 4 and len(set(dirs)) == 4 and all((d/'metrics.json').exists() for d in dirs)
    ds = collect('g', tmp_path)
    assert isinstance(ds, xr.Dataset) and ds.sizes['run'] == 4
    assert sorted(zip(ds.scale.values.tolist(), ds.seed.values.tolist())) == [(2, 0), (2, 1), (4, 0), (4, 1)]
    assert 'psnr_y' in ds.data_vars and (ds['params.scale'] == ds.scale).all()   # recorded == injected, per run
    assert (ds.lr_side == 16 // ds.scale).all()
    tab = ablation_table(collect_frame('g', tmp_path), metrics='psnr_y')
    assert list(tab.index) == [2, 4] and tab['n'].tolist() == [2, 2]
    assert tab.loc[2, ('psnr_y', 'mean')] > tab.loc[4, ('psnr_y', 'mean')]   # x2 round trip loses less than x4

@pytest.mark.slow
def test_failing_template_raises_and_leaves_no_metrics(tmp_path):
    bad = _nb(tmp_path, ("run_dir = ''\nx = 1", ['parameters']),
              ("from rsworkbench.experiments import save_metrics\nsave_metrics(run_dir, {'x': x})", None),
              ("if x == 7: raise RuntimeError(f'boom {x}')", None), name='bad.ipynb')
    with pytest.raises(RSWError) as e: run_template(bad, {'x': 7}, 'bad', out_root=tmp_path, progress=False)
    rd = run_dir_for('bad', resolve_params(bad, {'x': 7}), tmp_path)
    msg = str(e.value)
    assert 'RuntimeError' in msg and 'boom 7' in msg and str(rd/'executed.ipynb') in msg
    assert (rd/'executed.ipynb').exists() and (rd/'params.json').exists() and not (rd/'metrics.json').exists()
    with pytest.raises(RSWError, match='no finished runs'): collect('bad', tmp_path)
    # a grid goes on past a failed run and reports it at the end
    with pytest.raises(RSWError, match='1 of 2 runs'):
        run_grid(bad, {}, {'x': [7, 8]}, 'bad', out_root=tmp_path, progress=False)

def test_template_without_metrics_is_an_error(tmp_path):
    nb = _nb(tmp_path, ("run_dir = ''", ['parameters']), ("y = 1", None))
    with pytest.raises(RSWError, match='wrote no metrics.json'): run_template(nb, {}, 'nom', out_root=tmp_path, progress=False)

def test_relative_path_params_reach_the_template(tmp_path, monkeypatch):
    "A template runs in its run folder: a relative path given from the caller's directory must still name the same file there."
    (tmp_path/'inputs').mkdir(); (tmp_path/'inputs'/'teacher.txt').write_text('weights')
    tpl = _nb(tmp_path, ("run_dir = ''\nsrc = ''\nname = 'clean'", ['parameters']),
              ("from pathlib import Path\nfrom rsworkbench.experiments import save_metrics\n"
               "save_metrics(run_dir, {'text': Path(src).read_text(), 'name': name, 'src': src})", None))
    monkeypatch.chdir(tmp_path)
    rd = run_template(tpl, {'src': 'inputs/teacher.txt', 'name': 'clean'}, 'rel', out_root=tmp_path/'out', progress=False)
    m = load_metrics(rd)
    assert m['text'] == 'weights' and m['name'] == 'clean'
    assert m['src'] == str(tmp_path.resolve()/'inputs'/'teacher.txt')


@pytest.mark.parametrize('arg, msg', [('max_minutes=abc', 'parameter max_minutes: expected a number'),
                                      ('max_steps=-5', 'parameter max_steps: -5 is out of range'),
                                      ('batch=2.5', 'parameter batch: expected an integer')])
def test_rsw_train_refuses_bad_values_before_any_kernel(tmp_path, arg, msg):
    "A bad -p value is one line naming the parameter, and no run folder is left (it was a TypeError after 37 s, with a folder)."
    import subprocess, sys
    r = subprocess.run([str(Path(sys.executable).parent/'rsw'), 'train', 'train_sr_baseline', '-p', arg, '--out-root', str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode != 0 and msg in r.stderr + r.stdout, r.stderr[-2000:]
    assert 'Traceback' not in r.stderr
    assert list(tmp_path.rglob('*')) == []


def test_readme_training_example_runs_without_the_test_data(tmp_path):
    "The README's `rsw train train_sr_baseline -p max_minutes=...` on a clone without ../shared: data='auto' trains on the repo's data/ "
    "and the run records its files (it failed with 'no images found in ../shared/data')."
    import os, subprocess, sys
    env = {**os.environ, 'RSW_SHARED_DATA': str(tmp_path/'absent'), 'OMP_NUM_THREADS': '1'}
    r = subprocess.run([str(Path(sys.executable).parent/'rsw'), 'train', 'train_sr_baseline', '-p', 'max_minutes=0.05', '-p', 'max_steps=2',
                        '-p', 'n_blocks=1', '-p', 'n_feats=8', '-p', 'batch=2', '-p', 'patch=32', '-p', 'val_size=32', '--out-root', str(tmp_path/'out')],
                       capture_output=True, text=True, timeout=900, env=env, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    m = json.loads(next((tmp_path/'out').rglob('metrics.json')).read_text())
    used = m['params']['train_files'] + m['params']['val_files']
    assert used and all(Path(f).parent == Path(__file__).resolve().parents[1]/'data' for f in used)
