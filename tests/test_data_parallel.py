"""Data-parallel training through the shared loop: 2 CPU processes (gloo) × batch b reach the weights of 1 process × batch 2b,
and a run resumes across a change of process count. Per-trainer equivalence tests build on `run_processes` below."""
import json, os, subprocess, sys, textwrap
from pathlib import Path
import pytest, torch

ROOT = Path(__file__).resolve().parents[1]

def run_processes(script:str, n:int, *args, timeout=600):
    "Run `script` (Python source) in `n` processes under torch.distributed.run (gloo on the CPU); returns stdout."
    f = Path(args[0]).parent/f'_dp_script_{n}.py' if args else None
    f.write_text(script)
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'CUDA_VISIBLE_DEVICES': ''}
    cmd = ([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', str(n), '--master_port', str(29500 + os.getpid() % 1000 + n)]
           if n > 1 else [sys.executable])
    r = subprocess.run([*cmd, str(f), *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout

TOY = textwrap.dedent('''
    import sys, torch, torch.nn as nn, torch.nn.functional as F
    from pathlib import Path
    from rsworkbench.loop import TrainSpec, fit, make_accelerator, shard, SyncedOptimizer, processes
    out, per_process, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    torch.set_num_threads(1)
    acc = make_accelerator('cpu')
    torch.manual_seed(0); net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    opt = SyncedOptimizer(acc.prepare(torch.optim.Adam(net.parameters(), 1e-2)), acc)
    w = torch.tensor([[1., -2., 3., .5]])
    def step(i):
        g = torch.Generator().manual_seed(1000 + i)   # the global batch of step i, the same on every process
        x = torch.randn(per_process * processes(acc), 4, generator=g); y = x @ w.T + 0.1 * torch.randn(len(x), 1, generator=g)
        x, y = shard(x, acc), shard(y, acc)
        loss = F.mse_loss(net(x), y); opt.zero_grad(); acc.backward(loss); opt.step()
        return dict(loss=loss)
    def save(d): torch.save({k: v.clone() for k, v in net.state_dict().items()}, Path(d)/'w.pt')
    fit(TrainSpec('toy', step, save, dict(net=net, opt=opt), accelerator=acc, meta=dict(batch=per_process)),
        out, max_steps=8, stop_at=stop, ckpt_every=2, progress=False)
    if acc.num_processes > 1: acc.end_training()
''')

def _w(d): return torch.load(Path(d)/'last'/'w.pt', weights_only=True)

def test_two_processes_equal_one_with_double_batch_and_resume_across_counts(tmp_path):
    run_processes(TOY, 1, tmp_path/'one', 8, 8)      # 1 process × batch 8
    run_processes(TOY, 2, tmp_path/'two', 4, 8)      # 2 processes × batch 4
    a, b = _w(tmp_path/'one'), _w(tmp_path/'two')
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    ha, hb = (json.loads((tmp_path/d/'history.json').read_text()) for d in ('one', 'two'))
    assert hb['world_size'] == 2 and ha['world_size'] == 1
    assert all(abs(x - y) <= 1e-5 * abs(x) for x, y in zip(ha['loss'], hb['loss'])), (ha['loss'], hb['loss'])   # logged: the mean over the global batch
    # resume across a change of process count: 2 processes to step 4, then 1 process × batch 8 to step 8
    run_processes(TOY, 2, tmp_path/'mixed', 4, 4); run_processes(TOY, 1, tmp_path/'mixed', 8, 8)
    c = _w(tmp_path/'mixed')
    assert all(torch.allclose(a[k], c[k], atol=1e-6) for k in a)
    # without the gradient average the two processes' models drift apart from the one-process run
    run_processes(TOY.replace('SyncedOptimizer(', '(lambda o, a: o)('), 2, tmp_path/'nosync', 4, 8)
    d = _w(tmp_path/'nosync')
    assert any(not torch.allclose(a[k], d[k], atol=1e-4) for k in a)
