"""Data parallel for the SlimDiffSR teacher and student and the SGDM stages 1 and 2 (SFlow): on the CPU with gloo,
for each trainer (a) 2 processes × batch b for 4 steps reach the weights of 1 process × batch 2b, (b) a run taken to
step 2 by 2 processes and finished by 1 process × 2b reaches them too, (c) `accumulate=2` × b reaches them as well.
Each rank's model sees micro-batches of b rows only (the data is sharded, not repeated), and without the gradient
average the ranks would train apart from the 1-process run. Terms that differ by construction are off: the MMD of the
student (a set-wise statistic: distill='mse'), the SPADE BatchNorm of SGDM (fuse='concat'), and with accumulation the
spectral-norm discriminators (their power iteration runs once per forward). The weights are compared by how far
a run ends from the 1-process run relative to how far that run moved them: float rounding differs with the batch
split (a convolution of one image is not bit-equal to the same image in a batch of two), and Adam's first steps,
nearly sign(gradient), turn that into ±lr at the few weights whose gradient is at rounding level (LoRA's factors
right after their zero init), so elementwise `allclose` would fail on rounding alone, while a run without the
gradient average lands O(1) away (0.3 for SFlow). The teacher trains its UNet in full here (`unet_rank=0`; the VAE
decoder keeps LoRA): with LoRA on the tiny UNet and the GAN term that rounding alone puts 2 processes 1.6e-2 away."""
import json, textwrap
from pathlib import Path
import pytest, torch
from test_data_parallel import run_processes

SCRIPT = textwrap.dedent('''
    import json, os, sys, time, torch
    import torch.distributed as dist
    from pathlib import Path
    torch.set_num_threads(1)
    rows = []   # the batch size of every forward call of the watched module on this rank

    def watch(module):
        module.register_forward_pre_hook(lambda m, args: rows.append(len(args[0])))

    def teacher(out, **job):
        from rsworkbench.slim.pipeline import tiny_teacher
        from rsworkbench.slim.train import train_teacher, synthetic_tiles
        pipe = tiny_teacher(); watch(pipe.vae.encoder)
        t0 = time.time()   # the UNet trained in full (unet_rank=0), the VAE decoder through LoRA
        h = train_teacher(pipe, synthetic_tiles(8, 32), out, estimator_steps=2, lambda_lpips=0., discriminator='conv',
                          unet_rank=0, vae_rank=4, device='cpu', **job)
        return h, time.time() - t0, dict(unet=pipe.unet, vae=pipe.vae, estimator=pipe.estimator,
                                         predictor=pipe.predictor)

    def student(out, **job):
        from rsworkbench.slim.pipeline import tiny_teacher, tiny_student
        from rsworkbench.slim.train import train_student, synthetic_tiles
        pipe = tiny_student(); watch(pipe.net)
        t0 = time.time()
        h = train_student(pipe, tiny_teacher(), synthetic_tiles(8, 32), out, distill='mse', lambda_lpips=0.,
                          discriminator='conv', teacher_alpha_mode='variance', learning_rate=1e-3, device='cpu', **job)
        return h, time.time() - t0, dict(net=pipe.net)

    def stage1(out, **job):
        from rsworkbench.sgdm.pipeline import tiny_sgdm
        from rsworkbench.sgdm.train import train_stage1, MapCrops, sgdm_pairs
        pipe = tiny_sgdm(0, fuse='concat'); watch(pipe.encoder)   # concat: no BatchNorm
        t0 = time.time()
        h = train_stage1(pipe, MapCrops(sgdm_pairs(maps=True)[:2], 64, 16, seed=0), out, learning_rate=1e-3,
                         style_drop=0.5, device='cpu', **job)
        return h, time.time() - t0, dict(unet=pipe.unet, encoder=pipe.encoder, adapter=pipe.adapter, prompt=pipe.prompt)

    def stage2(out, batch, **job):
        from rsworkbench.sgdm.pipeline import tiny_sgdm
        from rsworkbench.sgdm.train import train_stage2, MapCrops, sgdm_pairs
        from rsworkbench.data.datasets import batch_at
        crops = MapCrops(sgdm_pairs(maps=False)[:2], 64, 16, seed=0)
        pipe = tiny_sgdm(0); watch(pipe.sflow.mean_flow)
        hrs = [batch_at(crops, i, 4)['hr'] for i in range(4)]   # 16 style vectors
        t0 = time.time()
        h = train_stage2(pipe, hrs, out, batch_size=batch, learning_rate=1e-2, device='cpu', **job)
        return h, time.time() - t0, dict(sflow=pipe.sflow)

    def sflow(out, batch, accumulate=1, **job):
        from rsworkbench.sgdm.sflow import SFlow, fit_sflow
        from rsworkbench.loop import make_accelerator
        g = torch.Generator().manual_seed(0)
        means, stds = 1 + 0.5 * torch.randn(24, 8, generator=g), (-1 + 0.2 * torch.randn(24, 8, generator=g)).exp()
        torch.manual_seed(0); flow = SFlow(dim=8, n_blocks=2, hidden=(16,)); watch(flow.mean_flow)
        t0 = time.time()
        h = fit_sflow(flow, means, stds, out, learning_rate=1e-2, batch_size=batch, accumulate=accumulate,
                      accelerator=make_accelerator('cpu'), **job)
        return h, time.time() - t0, dict(flow=flow)

    rank = int(os.environ.get('RANK', 0))   # set by torch.distributed.run
    from rsworkbench.loop import make_accelerator, SyncedOptimizer
    import safetensors.torch, tqdm.auto
    make_accelerator('cpu')   # start the process group and import what fit imports, outside the timed calls
    synced_step = SyncedOptimizer.step
    for job in json.loads(Path(sys.argv[1]).read_text()):
        out = Path(job.pop('out')); rows.clear()
        steps = 0 if job.pop('init', False) else 4   # init: the weights training starts from
        if job.pop('nosync', False):   # the gradient average switched off: each rank steps on its own gradients
            SyncedOptimizer.step = lambda self, *a, **k: self.optimizer.step(*a, **k)
        h, seconds, mods = globals()[job.pop('trainer')](out, max_steps=steps, ckpt_every=2, progress=False, **job)
        SyncedOptimizer.step = synced_step
        if rank == 0:
            torch.save({f'{m}.{k}': v.detach().clone() for m, mod in mods.items() for k, v in mod.state_dict().items()},
                       out/'weights.pt')
            (out/'timing.json').write_text(json.dumps(dict(seconds=seconds, steps=len(h['step']))))
        (out/f'rows_{rank}.json').write_text(json.dumps(rows))
    if dist.is_initialized(): dist.destroy_process_group()
''')

def _jobs(path:Path, jobs:list) -> Path:
    path.write_text(json.dumps([{**j, 'out': str(j['out'])} for j in jobs])); return path

def _rel(a:dict, b:dict, start:dict) -> float:
    "‖b − a‖ / ‖a − start‖ over all tensors: how far run b ends from run a, relative to how far training moved a."
    assert a.keys() == b.keys() == start.keys()
    dist = lambda x, y: sum(float((x[k].double() - y[k].double()).pow(2).sum()) for k in x) ** .5
    moved = dist(a, start); assert moved > 0, 'training did not move the weights'
    return dist(a, b) / moved

def _weights(d): return torch.load(Path(d)/'weights.pt', weights_only=True)
def _hist(d): return json.loads(next(p for p in (d/'history.json', d/'sflow'/'history.json') if p.exists()).read_text())
def _rows(d, rank): return json.loads((Path(d)/f'rows_{rank}.json').read_text())

def _throughput(d, global_batch) -> float:
    t = json.loads((Path(d)/'timing.json').read_text()); return t['steps'] * global_batch / t['seconds']

# trainer → (per-process batch b, what the accumulation runs turn off so that they can be exact)
CASES = {'teacher': (1, dict(lambda_gan=0.)), 'student': (1, dict(lambda_gan=0.)), 'stage1': (1, {}),
         'stage2': (4, {}), 'sflow': (4, {})}
TOL = 1e-2   # float rounding (amplified by Adam's first, sign-like steps) stays far below; a missing sync is O(1)

def check_trainer(tmp_path, trainer:str, nosync:bool=False) -> dict:
    "Run the three comparisons for `trainer`; returns the relative distances to the 1-process × 2b run."
    b, off = CASES[trainer]
    names = ['init', 'one', 'two', 'mixed', 'acc'] + ['init_acc', 'acc_ref'] * bool(off) + ['nosync'] * nosync
    d = {k: tmp_path/k for k in names}
    for p in d.values(): p.mkdir()
    two = [dict(out=d['two'], batch=b), dict(out=d['mixed'], batch=b, stop_at=2)]
    if nosync: two.append(dict(out=d['nosync'], batch=b, nosync=True))
    one = [dict(out=d['init'], batch=2 * b, init=True), dict(out=d['one'], batch=2 * b),
           dict(out=d['mixed'], batch=2 * b), dict(out=d['acc'], batch=b, accumulate=2, **off)]
    if off: one += [dict(out=d['init_acc'], batch=2 * b, init=True, **off), dict(out=d['acc_ref'], batch=2 * b, **off)]
    run_processes(SCRIPT, 2, _jobs(tmp_path/'jobs2.json', [dict(trainer=trainer, **j) for j in two]))
    run_processes(SCRIPT, 1, _jobs(tmp_path/'jobs1.json', [dict(trainer=trainer, **j) for j in one]))
    w = {k: _weights(d[k]) for k in names}
    acc_ref, acc_init = (w['acc_ref'], w['init_acc']) if off else (w['one'], w['init'])
    err = dict(two=_rel(w['one'], w['two'], w['init']), mixed=_rel(w['one'], w['mixed'], w['init']),
               acc=_rel(acc_ref, w['acc'], acc_init))
    if nosync: err['nosync'] = _rel(w['one'], w['nosync'], w['init'])
    print(f"{trainer}: distance to 1 process x {2 * b}, relative to its update: "
          + ', '.join(f'{k} {v:.1e}' for k, v in err.items()))
    # (a) 2 processes × b = 1 process × 2b: weights, and the logged loss (the mean over the global batch)
    assert err['two'] < TOL, err
    h1, h2 = _hist(d['one']), _hist(d['two'])
    assert all(abs(x - y) <= 1e-4 * max(1., abs(x)) for x, y in zip(h1['loss'], h2['loss'])), (h1['loss'], h2['loss'])
    assert (h2['world_size'], h2['batch'], h2['accumulate'], h2['effective_batch']) == (2, b, 1, 2 * b)
    assert (h1['world_size'], h1['effective_batch']) == (1, 2 * b)
    # each rank's model saw micro-batches of b rows (its shard), the 1-process run 2b: the data was split, not repeated
    assert max(_rows(d['two'], 0)) == max(_rows(d['two'], 1)) == b and max(_rows(d['one'], 0)) == 2 * b
    # (b) resumed across a change of process count: 2 processes to step 2, then 1 process × 2b to step 4
    assert err['mixed'] < TOL and _hist(d['mixed'])['step'] == [1, 2, 3, 4], err
    # (c) gradient accumulation: 2 micro-batches of b = one batch of 2b
    assert err['acc'] < TOL, err
    ha = _hist(d['acc'])
    assert (ha['accumulate'], ha['batch'], ha['effective_batch']) == (2, b, 2 * b) and max(_rows(d['acc'], 0)) == b
    print(f"{trainer}: samples/s 1 process x {2 * b}: {_throughput(d['one'], 2 * b):.2f}, "
          f"2 processes x {b}: {_throughput(d['two'], 2 * b):.2f}, 1 process x {b} x accumulate 2: "
          f"{_throughput(d['acc'], 2 * b):.2f}")
    return err

def test_sflow_data_parallel(tmp_path):
    "`fit_sflow` with an accelerator: style-vector minibatches sharded over the processes and micro-batches."
    err = check_trainer(tmp_path, 'sflow', nosync=True)
    assert err['nosync'] > 10 * TOL, err   # without the gradient average rank 0 trains apart from the 1-process run

@pytest.mark.slow
@pytest.mark.parametrize('trainer', ['teacher', 'student', 'stage1', 'stage2'])
def test_trainer_data_parallel(tmp_path, trainer):
    "SlimDiffSR teacher (estimator, generator + predictor, discriminator) and student; SGDM stages 1 and 2."
    check_trainer(tmp_path, trainer)
