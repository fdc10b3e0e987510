"""Collect the CPU training-based ablation runs (74, 92, 83 templates) into `nbs/results_data/` and draw the
direction figure for the results page.

Usage: .venv/bin/python scripts/ablation_tables.py OUT_ROOT TEX_RUN SGDM_RUN SLIM_RUN[,SLIM_RUN...]
(run folders are names under OUT_ROOT/<exp>/, or for SGDM a path). Bicubic is measured here on the runs' own held-out crops,
rebuilt from each run's parameters (the template defaults filled in); the slim template reports its own bicubic.
"""
import json, sys
from pathlib import Path
import pandas as pd
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from rsworkbench.core import from_pm1
from rsworkbench.experiments import template_params
from rsworkbench.metrics import compute_metrics
from rsworkbench.texadiff.train import texadiff_data, batch_at
from rsworkbench.sgdm.train import sgdm_pairs, split_pairs, map_batches

NBX = Path(__file__).resolve().parents[1]/'nbs'/'experiments'
BIC_METRICS = ['psnr', 'ssim', 'fsim', 'vsi', 'gmsd']

def run_params(run_dir, template):
    "A run's parameters with the template's defaults for those it did not set."
    return {**template_params(NBX/template), **json.loads((Path(run_dir)/'params.json').read_text())}

def metrics_row(pairs, fn=None):
    "Mean metrics of fn(lr, hr) (in [-1, 1]; default bicubic) over (lr, hr) batches in [-1, 1]."
    fn = fn or (lambda l, h: F.interpolate(l, size=h.shape[-2:], mode='bicubic', align_corners=False).clamp(-1, 1))
    rs = [compute_metrics(from_pm1(fn(l, h)).clamp(0, 1), from_pm1(h), BIC_METRICS) for l, h in pairs]
    return {m: float(torch.cat([torch.as_tensor(r[m]).flatten() for r in rs]).mean()) for m in BIC_METRICS}

def texadiff_eval_pairs(run_dir):
    "The held-out (lr, hr) batches of a 74 run (through 73: its val_fraction and split_seed defaults)."
    p, e = run_params(run_dir, '74_texadiff_ablations.ipynb'), template_params(NBX/'73_texadiff_evaluate.ipynb')
    dd = texadiff_data(p['data'], p['patch'], p['degradation'], e['val_fraction'], e['split_seed'])
    return [(b['lr'], b['hr']) for b in (batch_at(dd['val'], i, p['eval_batch']) for i in range(p['n_batches']))]

def sgdm_eval_pairs(run_dir):
    "The held-out (lr, hr) crops of a 92 run (drawn with seeds[0] + 1000, as the template does)."
    p = run_params(run_dir, '92_sgdm_ablations.ipynb')
    _, ev = split_pairs(sgdm_pairs(p['maps']), p['holdout'], p['holdout_pairs'])
    eb = map_batches(ev, p['hr_size'], p['scale'], 1, p['seeds'][0] + 1000)
    return [next(eb)[:2] for _ in range(p['n_eval'])]

texadiff_bicubic = lambda run_dir: metrics_row(texadiff_eval_pairs(run_dir))
sgdm_bicubic = lambda run_dir: metrics_row(sgdm_eval_pairs(run_dir))

if __name__ == '__main__':
    torch.set_num_threads(1)
    root, tex, sgdm, slim = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(',')
    dst = Path(__file__).resolve().parents[1]/'nbs'/'results_data'; dst.mkdir(exist_ok=True)

    # TexADiff: the template's own mean/std tables
    t = root/'texadiff_ablations'/tex
    for name in ('incremental', 'mask_variants'):
        df = pd.read_csv(t/f'{name}.csv', index_col=0)
        df.to_csv(dst/f'texadiff_{name}.csv')
    # SGDM: mean/std table and per-seed rows
    s = Path(sgdm) if '/' in sgdm else root/'sgdm_ablations'/sgdm   # a run name, or a run folder elsewhere
    pd.read_csv(s/'ablations.csv').to_csv(dst/'sgdm_ablations.csv', index=False)
    pd.read_csv(s/'per_seed.csv').to_csv(dst/'sgdm_per_seed.csv', index=False)
    # SlimDiffSR: the variants ran as separate template calls (two processes); merge their per-seed rows
    per = pd.concat([pd.read_csv(root/'slim_ablations'/r/'per_seed.csv') for r in slim], ignore_index=True)
    runs = [pd.read_csv(root/'slim_ablations'/r/'ablations.csv', index_col='variant') for r in slim]
    paper = runs[0].filter(like='paper_').join(pd.concat([r['sd21_params_m'].dropna() for r in runs]))   # SD 2.1-size count of each architecture
    g = per.groupby('variant', sort=False)
    tab = g[['psnr_y', 'ssim_y', 'gain_db']].mean().join(g[['psnr_y', 'gain_db']].std().add_suffix('_std'))
    tab = tab.join(g[['psnr_y_bicubic', 'params_m', 'seconds_per_tile', 'steps']].first()).assign(n_seeds=g.size()).join(paper)
    tab.to_csv(dst/'slim_ablations.csv'); per.to_csv(dst/'slim_per_seed.csv', index=False)
    bic = dict(texadiff_bicubic=texadiff_bicubic(t), sgdm_bicubic=sgdm_bicubic(s),
               note='bicubic on the runs\' own held-out crops: texadiff from the 74 run, sgdm from the 92 run (scripts/ablation_tables.py)')
    (dst/'bicubic_same_crops.json').write_text(json.dumps(bic, indent=1))
    (dst/'SOURCE.md').write_text(f"Collected by `scripts/ablation_tables.py` from `{root.name}/texadiff_ablations/{tex}`, "
                                 f"`{s.relative_to(root.parent) if s.is_relative_to(root.parent) else s}`, `slim_ablations/{'+'.join(slim)}` (2-core CPU, one thread per run).\n")

    # direction figure: per-seed change of PSNR-Y against each study's reference row
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.6))
    def panel(a, labels, deltas, title):
        for i, (lab, d) in enumerate(zip(labels, deltas)):
            a.scatter([i]*len(d), d, color='k', s=14, zorder=3); a.bar(i, sum(d)/len(d), color='tab:blue', alpha=.6)
        a.axhline(0, color='gray', lw=.8); a.set_xticks(range(len(labels))); a.set_xticklabels(labels, rotation=20, fontsize=8)
        a.set_title(title, fontsize=9); a.set_ylabel('Δ PSNR-Y (dB)')
    tp = pd.read_csv(t/'per_seed.csv'); tp = tp[tp['mask'] == 'predicted'].drop_duplicates(['label', 'seed', 'steps', 'ta_sampling'])
    tv = tp.set_index(['label', 'steps', 'ta_sampling', 'seed'])['psnr']
    lo, hi = int(tp['steps'].min()), int(tp['steps'].max())
    tsel = [('+RTDM cond.', ('rtdm', lo, False), ('baseline', lo, False)), ('+TADL', ('tadl', lo, False), ('baseline', lo, False)),
            (f'+RTDM cond. ({hi} st.)', ('rtdm', hi, False), ('baseline', hi, False)), (f'+TADL ({hi} st.)', ('tadl', hi, False), ('baseline', hi, False)),
            (f'+TA-samp. ({hi} st.)', ('tadl', hi, True), ('tadl', hi, False))]
    panel(ax[0], [n for n, _, _ in tsel], [list((tv.loc[k] - tv.loc[r]).values) for _, k, r in tsel], 'TexADiff 4x: vs baseline (TA: vs off)')
    tp.to_csv(dst/'texadiff_per_seed.csv', index=False)
    ps = pd.read_csv(s/'per_seed.csv'); ref = ps[(ps.study == 'fusion') & (ps.variant == 'none')].set_index('seed').psnr
    sel = [('fusion', 'concat'), ('fusion', 'spade'), ('map', 'shuffled'), ('map', 'none'), ('style', 'random_ref'), ('style', 'sflow'), ('style', 'none')]
    base = ps[(ps.study == 'style') & (ps.variant == 'gt')].set_index('seed').psnr
    d = [list((ps[(ps.study == a) & (ps.variant == b)].set_index('seed').psnr - (ref if a == 'fusion' else base)).values) for a, b in sel]
    panel(ax[1], ['concat', 'SPADE', 'map other', 'map none', 'style other', 'style SFlow', 'style none'], d, 'SGDM 16x: fusion vs no map; others vs SPADE + own style')
    pv = per.pivot(index='seed', columns='variant', values='psnr_y')
    panel(ax[2], [v for v in pv.columns if v != 'full'], [list((pv[v] - pv['full']).values) for v in pv.columns if v != 'full'], 'SlimDiffSR student: vs full')
    fig.tight_layout(); fig.savefig(dst.parent/'images'/'ablations_cpu_directions.png', dpi=110)
    print('wrote', sorted(p.name for p in dst.iterdir()))
