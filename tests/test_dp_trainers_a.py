"""Data parallel for `train_sr`, `train_autoencoder`, `train_texadiff` and `train_predictor` (issue #34): 2 CPU
processes (gloo) × batch b reach the weights of 1 process × batch 2b, a run resumes across a change of process count,
and `accumulate=2` × b equals 1 × 2b. The one-process runs go in-process, the two-process ones through
`torch.distributed.run` (`test_data_parallel.run_processes`), all jobs of a test in one launch. `train_sr` runs in CI,
the others are `slow`.

Equal means: the distance between the two runs' weights is under 0.1 % of how far the reference run moved them (L2
over all weights; measured: 4e-7 to 5e-5). Not element by element: the gradients agree to rounding, but Adam steps a
weight by about ±lr whatever the size of its gradient, so a coordinate whose gradient is at the rounding level (e.g. a
conv bias in front of a one-channel GroupNorm group, which the tiny autoencoder config has; the test's has two channels
per group) may step either way. Breaking a mechanism moves the weights by 75 % or more (no gradient average, noise or
timesteps drawn per process: checked by hand), a half-size batch by 14 % or more (asserted)."""
import json, os
from pathlib import Path
import pytest, torch
from test_data_parallel import run_processes

B, STEPS = 2, 4                   # per-process batch, steps
SLOW = ('ae', 'tex', 'pred')      # the trainers of the slow tests

def _run(trainer:str, out, batch:int, accumulate:int=1, stop=None, steps:int=STEPS):
    "Train `trainer` tiny from seed 0 into `out` on the CPU for `steps` steps in all; returns the history."
    from rsworkbench.core import seed_everything
    from rsworkbench.data.datasets import HRTileDataset, bundled_images
    from rsworkbench.data.degrade import Degrader
    kw = dict(max_steps=steps, batch=batch, accumulate=accumulate, stop_at=stop, device='cpu', progress=False)
    files = bundled_images()[:2]
    seed_everything(0)
    if trainer == 'sr':               # a random (Real-ESRGAN) degradation of the batch, validation on the main process
        from rsworkbench.models.train import ResidualSRNet, PatchSampler, val_pairs, train_sr
        ps = PatchSampler(files, 32, 4, degrader=Degrader('realesrgan', 4, seed=0), seed=0)
        return train_sr(ResidualSRNet(n_blocks=1, n_feats=8), ps, val_pairs(files[:1], 4, 32), out, val_every=2,
                        learning_rate=1e-3, **kw)
    if trainer == 'ae':               # posterior samples, a KL weight that matters; 2 channels per norm group (below)
        from diffusers import AutoencoderKL
        from rsworkbench.models.train import PatchSampler
        from rsworkbench.models.autoencoder import train_autoencoder
        vae = AutoencoderKL(block_out_channels=(16, 32), down_block_types=('DownEncoderBlock2D',) * 2,
                            up_block_types=('UpDecoderBlock2D',) * 2, latent_channels=4, norm_num_groups=8)
        return train_autoencoder(vae, PatchSampler(files, 32, seed=0), out, learning_rate=2e-3, lambda_kl=1e-2,
                                 ckpt_every=2, **kw)
    from rsworkbench.texadiff.pipeline import tiny_pipeline, TINY_PREDICTOR
    ds = HRTileDataset(files, patch=32, scale=4, degrader=Degrader('bicubic', 4, seed=0), samples_per_image=2, seed=0)
    if trainer == 'tex':              # posterior samples, noise and timesteps per sample
        from rsworkbench.texadiff.train import train_texadiff
        return train_texadiff(tiny_pipeline(seed=0), ds, out, learning_rate=1e-3, perceptual='gmsd', seed=0,
                              ckpt_every=2, **kw)
    from rsworkbench.texadiff.rtdm import RTDMPredictor
    from rsworkbench.texadiff.train import train_predictor
    net = RTDMPredictor(**TINY_PREDICTOR); psr = tiny_pipeline(seed=0)
    return train_predictor(net, ds, psr, out, learning_rate=3e-3, perceptual='gmsd', ckpt_every=2, **kw)

def _timed(**job) -> dict:
    "Run a fresh job; its samples per second (steps × effective batch over the loop's time: validation and writes in)."
    h = _run(**job); dt = h['minutes'] * 60
    return dict(job, world=h['world_size'], seconds=dt, samples_per_s=len(h['step']) * h['effective_batch'] / dt)

def main(jobs_file):
    "Entry point of the launched processes: the jobs in `jobs_file` (a JSON list), one after the other."
    torch.set_num_threads(1)
    for job in json.loads(Path(jobs_file).read_text()):
        r = _timed(**job)
        if int(os.environ.get('RANK', 0)) == 0: print(json.dumps(r), flush=True)
    import torch.distributed as dist
    if dist.is_initialized(): dist.destroy_process_group()

SCRIPT = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n" \
         f"from test_dp_trainers_a import main; main(sys.argv[1])\n"

@pytest.fixture(scope='module')
def two_processes(tmp_path_factory):
    "get(trainers): run each trainer with 2 processes × B for all steps ('<t>_two') and to step 2 ('<t>_mixed'), once."
    done = {}
    def get(trainers:tuple):
        if trainers not in done:
            d = tmp_path_factory.mktemp('dp')
            jobs = [dict(trainer=t, out=str(d/f'{t}_{k}'), batch=B, stop=stop)
                    for t in trainers for k, stop in (('two', None), ('mixed', 2))]
            (d/'jobs.json').write_text(json.dumps(jobs))
            out = run_processes(SCRIPT, 2, d/'jobs.json')
            done[trainers] = d, [json.loads(l) for l in out.splitlines() if l.startswith('{')]
        return done[trainers]
    return get

def _weights(run) -> dict:
    "Every saved model tensor of a run's last/ (all safetensors but the resume state), by file and name."
    from safetensors.torch import load_file
    last = Path(run)/'last'
    return {f'{f.relative_to(last)}:{k}': v for f in sorted(last.rglob('*.safetensors'))
            if f.name != 'train_state.safetensors' for k, v in load_file(str(f)).items()}

def _gap(a:dict, b:dict, start:dict) -> float:
    "How far run b's weights are from run a's, relative to how far run a moved from `start` (L2 over all weights)."
    assert a.keys() == b.keys() == start.keys()
    d, u = (sum(float((x[k].double() - y[k].double()).pow(2).sum()) for k in a) for x, y in ((a, b), (a, start)))
    return (d / u) ** 0.5

def _history(run) -> dict: return json.loads((Path(run)/'history.json').read_text())

def _check(trainer, two_processes, tmp_path, tol=1e-3):
    "(a), (b), (c) of the module docstring for one trainer; returns the 2-process history."
    d, timings = two_processes(SLOW if trainer in SLOW else (trainer,))
    one = tmp_path/'one'
    timings += [_timed(trainer=trainer, out=str(one), batch=2 * B)]      # 1 process × 2b: the reference
    _run(trainer, tmp_path/'init', 2 * B, steps=0)
    ref, init = _weights(one), _weights(tmp_path/'init')
    gap = lambda run: _gap(ref, _weights(run), init)
    # (a) 2 processes × b == 1 process × 2b; the logged loss is the mean over the global batch
    two, h1, h2 = d/f'{trainer}_two', _history(one), _history(d/f'{trainer}_two')
    assert gap(two) < tol, gap(two)
    assert (h2['world_size'], h2['batch'], h2['accumulate'], h2['effective_batch']) == (2, B, 1, 2 * B)
    assert h1['step'] == h2['step'] == list(range(1, STEPS + 1))
    assert all(abs(x - y) <= 1e-4 * abs(x) + 1e-7 for x, y in zip(h1['loss'], h2['loss'])), (h1['loss'], h2['loss'])
    # (b) 2 processes to step 2, then 1 process × 2b to the end == 1 process × 2b throughout
    mixed = d/f'{trainer}_mixed'
    assert _history(mixed)['step'] == [1, 2] and _history(mixed)['world_size'] == 2
    _run(trainer, mixed, 2 * B)
    assert _history(mixed)['step'] == list(range(1, STEPS + 1)) and _history(mixed)['world_size'] == 1
    assert gap(mixed) < tol, gap(mixed)
    # (c) 1 process × b × accumulate 2 == 1 process × 2b
    h3 = _run(trainer, tmp_path/'accum', B, accumulate=2)
    assert (h3['accumulate'], h3['effective_batch']) == (2, 2 * B)
    assert gap(tmp_path/'accum') < tol, gap(tmp_path/'accum')
    # not trivially true: half the batch (1 process × b) ends elsewhere
    timings += [_timed(trainer=trainer, out=str(tmp_path/'half'), batch=B)]
    assert gap(tmp_path/'half') > 30 * tol, gap(tmp_path/'half')
    print(f"{trainer}: gaps two {gap(two):.2g}, mixed {gap(mixed):.2g}, accum {gap(tmp_path/'accum'):.2g}, "
          f"half {gap(tmp_path/'half'):.2g}")
    for r in timings:
        if r['trainer'] == trainer and r.get('stop') is None:
            print(f"{trainer}: {r['world']} process(es) x batch {r['batch']}: {r['samples_per_s']:.1f} samples/s")
    return h2

def test_train_sr_data_parallel(two_processes, tmp_path, one_thread):
    h2 = _check('sr', two_processes, tmp_path)
    assert [v['step'] for v in h2['val']] == [2, 4]      # validated once per due step (on the main process)

@pytest.mark.slow
@pytest.mark.parametrize('trainer', SLOW)
def test_trainers_data_parallel(trainer, two_processes, tmp_path, one_thread): _check(trainer, two_processes, tmp_path)
