"""`rsw train TEMPLATE --processes N`: N local processes (torchrun, gloo on the CPU) run one template into one run folder.
Rank 0 writes the run's files once (run.json records world_size and effective_batch), the other ranks only their executed
notebook, the run folder does not depend on N, and a rank that fails unmarks the run."""
import json, os, subprocess, sys
from pathlib import Path
import nbformat, pytest
from rsworkbench.cli import RSW_MAIN
from rsworkbench.experiments import resolve_params, run_dir_for

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT/'nbs'/'experiments'

def rsw(*args, timeout=600):
    "Run `rsw ARGS` in a fresh process (one thread per process, no GPU); returns the CompletedProcess."
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': '', 'HF_HUB_OFFLINE': '1'}
    return subprocess.run([sys.executable, '-c', RSW_MAIN, *map(str, args)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)

def files(d:Path) -> list: return sorted(str(p.relative_to(d)) for p in d.rglob('*') if p.is_file())

def test_two_processes_one_run_folder(tmp_path):
    "The tiny template in 2 processes: one set of run files, run.json says 2, and 1 process finds the same run finished."
    r = rsw('train', 'tiny_template', '-p', 'size=8', '--processes', 2, '--out-root', tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rd = run_dir_for('tiny_template', resolve_params(TEMPLATES/'00_tiny_template.ipynb', {'size': 8}), tmp_path)
    assert f'run folder: {rd} (2 processes)' in r.stdout   # printed once, by rank 0
    assert files(rd) == ['executed.ipynb', 'metrics.json', 'params.json', 'ranks/executed.rank1.ipynb', 'run.json']
    run = json.loads((rd/'run.json').read_text())
    assert run['world_size'] == 2 and run['effective_batch'] is None   # the tiny template has no batch parameter
    assert json.loads((rd/'metrics.json').read_text())['params']['size'] == 8
    rank1 = nbformat.read(rd/'ranks'/'executed.rank1.ipynb', as_version=4)   # rank 1 ran the template through too
    assert all(c.get('execution_count') for c in rank1.cells if c.cell_type == 'code' and c.source.strip())
    before = {f: (rd/f).stat().st_mtime_ns for f in files(rd)}
    one = rsw('train', 'tiny_template', '-p', 'size=8', '--out-root', tmp_path)   # the same run at 1 process: finished
    assert one.returncode == 0 and f'run folder: {rd}\n' in one.stdout
    assert {f: (rd/f).stat().st_mtime_ns for f in files(rd)} == before   # skipped: nothing rewritten

FAILING = '''import os, time
from pathlib import Path
from rsworkbench.experiments import save_metrics
if os.environ.get('RANK') == '1':   # rank 1 fails after rank 0 has marked the run finished
    while not (Path(run_dir)/'metrics.json').exists(): time.sleep(0.1)
    raise RuntimeError('rank 1 fails')
save_metrics(run_dir, {'ok': 1})'''

@pytest.mark.slow
def test_a_failed_rank_unmarks_the_run(tmp_path):
    "Rank 0 waits for every rank: when rank 1 fails after rank 0's metrics.json, the run is not left looking finished."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("run_dir = ''", metadata={'tags': ['parameters']}),
                                         nbformat.v4.new_code_cell(FAILING)])
    nb.metadata['kernelspec'] = dict(name='python3', display_name='python3', language='python')
    nbformat.write(nb, tmp_path/'rank_fail.ipynb')
    r = rsw('train', tmp_path/'rank_fail.ipynb', '--exp', 'fail', '--processes', 2, '--out-root', tmp_path/'out')
    assert r.returncode != 0 and '2-process run failed' in r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    rd = run_dir_for('fail', {}, tmp_path/'out')
    assert (rd/'executed.ipynb').exists() and (rd/'ranks'/'executed.rank1.ipynb').exists()
    assert not (rd/'metrics.json').exists()

@pytest.mark.slow
def test_train_sr_baseline_debug_in_two_processes(tmp_path):
    "Template 20's debug preset trains data-parallel in 2 processes: one metrics.json, world size and batch recorded."
    r = rsw('train', 'train_sr_baseline', '--debug', '--processes', 2, '--out-root', tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    tpl = TEMPLATES/'20_train_sr_baseline.ipynb'
    rd = run_dir_for('train_sr_baseline', resolve_params(tpl, {}, debug=True), tmp_path, debug=True)
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob('metrics.json')] == [(rd/'metrics.json').relative_to(tmp_path)]
    run, hist = json.loads((rd/'run.json').read_text()), json.loads((rd/'history.json').read_text())
    batch = resolve_params(tpl, {}, debug=True)['batch']
    assert run['world_size'] == hist['world_size'] == 2 and run['effective_batch'] == 2 * batch
    # rank 1 ran the template through: its cells after training read the history's validations (the main process's)
    rank1 = nbformat.read(rd/'ranks'/'executed.rank1.ipynb', as_version=4)
    assert all(c.get('execution_count') for c in rank1.cells if c.cell_type == 'code' and c.source.strip())
    assert json.loads((rd/'metrics.json').read_text())['steps'] == resolve_params(tpl, {}, debug=True)['max_steps']
