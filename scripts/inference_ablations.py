"""Inference-only ablations of the shipped (or given) TexADiff and SGDM pipelines on held-out crops.

    python scripts/inference_ablations.py texadiff [--checkpoint DIR] [--out outputs/ablations_texadiff.json]
    python scripts/inference_ablations.py sgdm [--checkpoint DIR]

TexADiff rows: its PSR stage alone, the mask variants of the paper's Table (predicted / ones / zeros / inverted / ground truth), TA-sampling on vs off,
and a sampling-steps sweep (PSNR against sharpness). SGDM rows: the style sources (ground-truth HR / another image's HR / SFlow
sample / none) and the maps (aligned / another tile's / none) of the paper's Figs. 12 and 14. Each row is measured on the same
held-out crops with `seeds` noise seeds; `sharpness` is the mean gradient magnitude of the SR over that of the HR (1 = as sharp
as the HR). Rows that need a separately trained model (TexADiff's +RTDM/+TADL increments, SGDM's fusion variants) are not here.
"""
import argparse, json, time
from pathlib import Path
import numpy as np, torch, torch.nn.functional as F

def grad_mag(x):
    g = x.mean(1, keepdim=True)
    return ((g[..., 1:, :-1] - g[..., :-1, :-1]) ** 2 + (g[..., :-1, 1:] - g[..., :-1, :-1]) ** 2).sqrt().mean().item()

def metrics_of(sr, hr, names):
    from rsworkbench.metrics import compute_metrics
    r = compute_metrics(sr, hr, list(names))
    out = {k: float(v.mean()) for k, v in r.items()}
    out['sharpness'] = grad_mag(sr) / max(grad_mag(hr), 1e-8)
    return out

def mean_rows(rows):
    "Rows are `(seed, metrics)` pairs. Mean over all; `_std`: spread of the per-seed means (run-to-run); `_crop_std`: spread over the crops."
    seeds = sorted({s for s, _ in rows}); keys = rows[0][1]
    per_seed = {k: [np.mean([r[k] for s2, r in rows if s2 == s]) for s in seeds] for k in keys}
    return ({k: float(np.mean([r[k] for _, r in rows])) for k in keys} | {f'{k}_std': float(np.std(per_seed[k])) for k in keys}
            | {f'{k}_crop_std': float(np.std([r[k] for _, r in rows])) for k in keys} | {'n_seeds': len(seeds)})

METRICS = ('psnr', 'ssim', 'fsim', 'vsi', 'gmsd')

def texadiff(a):
    from rsworkbench.core import from_pm1
    from rsworkbench.texadiff.pipeline import load_texadiff
    from rsworkbench.texadiff.train import texadiff_data, rtdm_targets
    from rsworkbench.data.datasets import batch_at
    pipe = load_texadiff(4, 'cpu', a.checkpoint).pipe
    dd = texadiff_data('clean', a.patch, 'bicubic', 0.2, 0)
    batches = [batch_at(dd['val'], i, a.batch) for i in range(a.n_batches)]
    d = pipe.config.default_steps
    rows = {'bicubic': [], 'PSR alone': [], **{f'mask {m}': [] for m in ('predicted', 'ones', 'zeros', 'inverted', 'gt')},
            **{f'steps {n}': [] for n in sorted({1, 2, 4, d, 20})}, 'steps 20, TA-sampling off': []}
    for s in range(a.seeds):
        for i, b in enumerate(batches):
            lr, hr = b['lr'], b['hr']; H = from_pm1(hr)
            if s == 0: rows['bicubic'].append((s, metrics_of(F.interpolate(from_pm1(lr), scale_factor=4, mode='bicubic', align_corners=False).clamp(0, 1), H, METRICS)))
            psr = pipe.run_psr(lr)
            if s == 0: rows['PSR alone'].append((s, metrics_of(from_pm1(psr).clamp(0, 1), H, METRICS)))
            gt = rtdm_targets(psr, hr, 'gmsd', pipe.config.tau, factor=pipe.vae_scale_factor)['mask']
            run = lambda **kw: from_pm1(pipe(lr, seed=1000 * s + i, **kw).images)
            for m in ('predicted', 'ones', 'zeros', 'inverted'): rows[f'mask {m}'].append((s, metrics_of(run(mask_variant=m), H, METRICS)))
            rows['mask gt'].append((s, metrics_of(run(mask=gt), H, METRICS)))
            for n in sorted({1, 2, 4, d, 20}): rows[f'steps {n}'].append((s, metrics_of(run(num_inference_steps=n), H, METRICS)))
            rows['steps 20, TA-sampling off'].append((s, metrics_of(run(num_inference_steps=20, ta_sampling=False), H, METRICS)))
    return {k: mean_rows(v) for k, v in rows.items() if v}, dict(default_steps=d, crops=a.n_batches * a.batch, patch=a.patch, seeds=a.seeds)

def sgdm(a):
    from rsworkbench.core import from_pm1
    from rsworkbench.sgdm.pipeline import load_sgdm
    from rsworkbench.sgdm.train import sgdm_pairs, split_pairs, map_batches, sgdm_inputs
    pipe = load_sgdm(16, 'cpu', a.checkpoint).pipe
    _, ev = split_pairs(sgdm_pairs(True), a.holdout)
    eb = map_batches(ev, a.patch, 16, 1, 1000)
    samples = [next(eb) for _ in range(a.n_batches)]
    modes = [('style', s, 'aligned') for s in ('gt', 'random_ref', 'sflow', 'none')] + [('map', 'gt', m) for m in ('aligned', 'shuffled', 'none')]
    d = pipe.config.default_steps
    temps = (0.0, 0.5, 1.0)
    rows = {'bicubic': [], **{f'{k} {v if k == "style" else m}': [] for k, v, m in modes}, **{f'style sflow, temperature {T:g}': [] for T in temps},
            **{f'steps {n} (sflow, aligned)': [] for n in sorted({1, 2, 4, d, 50})}}
    for s in range(a.seeds):
        for i, (lr, hr, _) in enumerate(samples):
            H = from_pm1(hr)
            if s == 0: rows['bicubic'].append((s, metrics_of(F.interpolate(from_pm1(lr), scale_factor=16, mode='bicubic', align_corners=False).clamp(0, 1), H, METRICS)))
            for k, st, mp in modes:
                m, sty = sgdm_inputs(samples, i, st, mp)
                rows[f'{k} {st if k == "style" else mp}'].append((s, metrics_of(from_pm1(pipe(lr, 16, m, style=sty, seed=1000 * s + i).images), H, METRICS)))
            m, sty = sgdm_inputs(samples, i, 'sflow', 'aligned')
            for T in temps:
                st = pipe.sflow.sample(1, seed=1000 * s + i, temperature=T)
                rows[f'style sflow, temperature {T:g}'].append((s, metrics_of(from_pm1(pipe(lr, 16, m, style=st, seed=1000 * s + i).images), H, METRICS)))
            for n in sorted({1, 2, 4, d, 50}):
                rows[f'steps {n} (sflow, aligned)'].append((s, metrics_of(from_pm1(pipe(lr, 16, m, style=sty, num_inference_steps=n, seed=1000 * s + i).images), H, METRICS)))
    return {k: mean_rows(v) for k, v in rows.items() if v}, dict(default_steps=d, style_temperature=pipe.config.style_temperature, crops=a.n_batches,
                                                                 patch=a.patch, seeds=a.seeds, holdout_pairs=a.holdout)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('method', choices=['texadiff', 'sgdm'])
    ap.add_argument('--checkpoint', default=None)
    ap.add_argument('--patch', type=int, default=None, help='HR crop side (texadiff 96, sgdm 128)')
    ap.add_argument('--batch', type=int, default=4)
    ap.add_argument('--n-batches', type=int, default=None, help='texadiff: batches of --batch crops (2); sgdm: crops (8)')
    ap.add_argument('--holdout', type=int, default=2)
    ap.add_argument('--seeds', type=int, default=2)
    ap.add_argument('--out', default=None)
    a = ap.parse_args(); torch.set_num_threads(1)
    a.patch = a.patch or (96 if a.method == 'texadiff' else 128); a.n_batches = a.n_batches or (2 if a.method == 'texadiff' else 8)
    t0 = time.time()
    with torch.inference_mode(): rows, info = (texadiff if a.method == 'texadiff' else sgdm)(a)
    info['minutes'] = (time.time() - t0) / 60
    out = Path(a.out or f'outputs/ablations_{a.method}.json'); out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(rows=rows, info=info), indent=1))
    cols = ['psnr', 'ssim', 'fsim', 'vsi', 'gmsd', 'sharpness']
    print(f"{a.method}: {info}\n| row | " + ' | '.join(cols) + ' |\n|:--|' + '--:|' * len(cols))
    for k, r in rows.items(): print(f"| {k} | " + ' | '.join(f"{r[c]:.3f} ± {r[c + '_std']:.3f} (crops ± {r[c + '_crop_std']:.2f})" if c == 'psnr' else f"{r[c]:.3f}" for c in cols) + ' |')

if __name__ == '__main__': main()
