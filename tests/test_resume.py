"""Resume through the shared training loop (`rsworkbench.loop`): a run killed mid-way and resumed reaches the weights of a run
that never stopped, bit for bit on the CPU (the other trainers' equivalents are in test_resume_slim.py and
test_resume_texadiff_sgdm.py)."""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest, torch

SCRIPT = textwrap.dedent('''
    import sys, torch
    torch.set_num_threads(1)
    from rsworkbench.data.datasets import bundled_images
    from rsworkbench.models.train import ResidualSRNet, PatchSampler, train_sr
    out, stop = sys.argv[1], (int(sys.argv[2]) if len(sys.argv) > 2 else None)
    torch.manual_seed(0)
    net = ResidualSRNet(n_blocks=1, n_feats=8)
    train_sr(net, PatchSampler(bundled_images()[:2], 32, 4, seed=1), None, out, max_steps=400, batch=2, learning_rate=1e-3,
             device='cpu', progress=False, ckpt_every=2, stop_at=stop)
''')

def _run(args, **kw):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    return subprocess.Popen([sys.executable, '-c', SCRIPT, *map(str, args)], env=env, **kw)

def _weights(folder):
    from rsworkbench.models.train import ResidualSRNet
    return ResidualSRNet.from_pretrained(str(folder)).state_dict()

def test_killed_run_resumes_bit_exact(tmp_path):
    "SIGKILL a training process after its first checkpoints, resume to step 12: same weights as an uninterrupted 12-step run."
    p = _run([tmp_path/'killed'])
    state = tmp_path/'killed'/'last'/'train_state.json'
    t0 = time.time()
    while not state.exists() and time.time() - t0 < 120 and p.poll() is None: time.sleep(0.05)
    assert state.exists(), 'the training process wrote no checkpoint'
    p.send_signal(signal.SIGKILL); p.wait()
    done = json.loads(state.read_text())['__dict__'][0][1]   # the step the killed run had saved
    assert 2 <= done < 12, done
    assert _run([tmp_path/'killed', 12]).wait() == 0   # resume (a fresh process) up to step 12
    assert _run([tmp_path/'straight', 12]).wait() == 0  # never interrupted
    a, b = _weights(tmp_path/'killed'/'last'), _weights(tmp_path/'straight'/'last')
    assert all(torch.equal(a[k], b[k]) for k in a)
    ha = json.loads((tmp_path/'killed'/'history.json').read_text()); hb = json.loads((tmp_path/'straight'/'history.json').read_text())
    assert ha['step'] == hb['step'] == list(range(1, 13)) and ha['loss'] == hb['loss']
    # and the training did move the weights (the comparison above is not between two untouched nets)
    torch.manual_seed(0)
    from rsworkbench.models.train import ResidualSRNet
    init = ResidualSRNet(n_blocks=1, n_feats=8).state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a)

def test_autoencoder_and_sr_resume_in_pieces(tmp_path, one_thread):
    "train_sr with validation and best-checkpointing, and train_autoencoder, in pieces = at once (bit-exact)."
    from rsworkbench.data.datasets import bundled_images
    from rsworkbench.models.train import ResidualSRNet, PatchSampler, train_sr, val_pairs
    from rsworkbench.models.autoencoder import train_autoencoder
    from rsworkbench.models.backbones import build_vae
    files = bundled_images()[:2]; val = val_pairs(files[:1], 4, 32)
    def sr(out, stop=None, seed=0):
        torch.manual_seed(seed); net = ResidualSRNet(n_blocks=1, n_feats=8)
        h = train_sr(net, PatchSampler(files, 32, 4, seed=1), val, out, max_steps=8, batch=2, val_every=3, learning_rate=1e-3,
                     device='cpu', progress=False, stop_at=stop)
        return net, h
    a, ha = sr(tmp_path/'a')
    sr(tmp_path/'b', stop=5); b, hb = sr(tmp_path/'b', seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert ha['loss'] == hb['loss'] and [v['step'] for v in hb['val']] == [3, 5, 6, 8]
    def ae(out, stop=None, seed=0):
        vae = build_vae('tiny', seed=seed)
        train_autoencoder(vae, PatchSampler(files, 32, seed=0), out, max_steps=6, batch=1, ckpt_every=2, device='cpu', progress=False,
                          stop_at=stop)
        return vae
    va = ae(tmp_path/'va'); ae(tmp_path/'vb', stop=3); vb = ae(tmp_path/'vb', seed=3)
    assert all(torch.equal(x, y) for x, y in zip(va.state_dict().values(), vb.state_dict().values()))
