"""Collect the SlimDiffSR distillation ablation (template 83 with the distill_none / distill_mse / full rows, one run per seed)
and its wider evaluation (template 80 with one `slim-student:<variant><seed>` row per checkpoint) into `nbs/results_data/`,
and draw the figure for the results page.

Usage: .venv/bin/python scripts/distill_table.py [--name NAME] SLIM_RUN[,SLIM_RUN...] COMPARE_RUN[,COMPARE_RUN...] [TEACHER_RUN[,TEACHER_RUN...]]
(NAME: the output files' stem, default `slim_distill`: `nbs/results_data/NAME*.csv`, `nbs/images/NAME_cpu.png`)
(run folders; each compare run evaluated every checkpoint as a row named `slim-student:<variant><seed>`, e.g. `slim-student:mse0`;
the optional teacher runs are template-80 runs with a `slim-teacher` row on the same evaluation sets).
Rows missing from the runs (e.g. a rerun of the MSE + MMD row alone) are left out of the tables, and the figure is drawn only when
the undistilled row is there.
Paired differences between two variants are taken per seed on the same pairs (the two students share the seed: init and crops),
then pooled over the seeds' pairs (mean and 95% t-interval by `experiments.paired_gains`; optimistic, since the same images recur in every seed).
"""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
from rsworkbench.experiments import paired_gains

ROW = {'distill_none': 'none', 'distill_mse': 'mse', 'full': 'mmd'}   # template 83 variant -> compare-row label
LABEL = {'none': 'no distillation', 'mse': 'MSE', 'mmd': 'MSE + MMD'}
PAIRS = [('mse', 'none'), ('mmd', 'none'), ('mmd', 'mse')]             # (row, against)
METRICS = ['psnr', 'ssim', 'fsim', 'vsi', 'gmsd']

LOWER_BETTER = {'gmsd', 'nlpd'}

def paired(a, b, metric='psnr'):
    "Paired difference a - b (`experiments.paired_gains`: mean, std, 95% t-interval) and the share of pairs where a is better."
    t = pd.DataFrame(); t.attrs['per_pair'] = {'a': {metric: list(a)}, 'b': {metric: list(b)}}
    r = paired_gains(t, metric, base='b', higher_better=metric not in LOWER_BETTER).loc['a']
    return dict(mean=r.gain, std=r['std'], ci_lo=r.ci95_lo, ci_hi=r.ci95_hi, better=r.wins / r.n, n=int(r.n))

def eval_name(m):
    "Which set a template-80 run evaluated, from its metrics.json."
    return 'research-only scenes' if m['params'].get('eval_set') == 'research' else ('held-out tiles' if m['params'].get('tiles') else 'held-out crops')

def compare_rows(run):
    "{(label, seed): {metric: per-pair values}}, bicubic's values, the set's name and the number of pairs, from a template-80 run."
    m = json.loads((Path(run)/'metrics.json').read_text())
    pp, out = m['per_pair'], {}
    for name, vals in pp.items():
        if not name.startswith('slim-student:'): continue
        tag = name.split(':', 1)[1]; lab = tag.rstrip('0123456789')
        out[(lab, int(tag[len(lab):]))] = vals
    return out, pp['bicubic'], eval_name(m), m['n_pairs']

if __name__ == '__main__':
    args = sys.argv[1:]
    name = args[1] if args[:1] == ['--name'] else 'slim_distill'
    if args[:1] == ['--name']: args = args[2:]
    if len(args) < 2: sys.exit(__doc__)
    slim, comp = args[0].split(','), args[1].split(',')
    dst = Path(__file__).resolve().parents[1]/'nbs'/'results_data'
    # template 83's own held-out batches: per seed and mean/std
    per = pd.concat([pd.read_csv(Path(r)/'per_seed.csv') for r in slim], ignore_index=True)
    per = per[per.variant.isin(ROW)].assign(row=lambda d: d.variant.map(ROW))
    g = per.groupby('row', sort=False)
    tab = g[['psnr_y', 'ssim_y', 'gain_db']].mean().join(g[['psnr_y', 'gain_db']].std().add_suffix('_std')).assign(n_seeds=g.size())
    tab = tab.join(g[['psnr_y_bicubic', 'steps']].first())
    # wider evaluation: gains over bicubic and paired differences between variants
    rows, diffs = [], []
    for r in comp:
        vals, bic, what, n = compare_rows(r)
        seeds = sorted({s for _, s in vals})
        for lab in ('none', 'mse', 'mmd'):
            if not any((lab, s) in vals for s in seeds): continue
            for k in METRICS:
                gs = [np.mean(np.asarray(vals[(lab, s)][k]) - np.asarray(bic[k])) for s in seeds if (lab, s) in vals]
                rows.append(dict(eval=what, n_pairs=n, row=lab, metric=k, mean=np.mean([np.mean(vals[(lab, s)][k]) for s in seeds if (lab, s) in vals]),
                                 gain_vs_bicubic=np.mean(gs), gain_std_over_seeds=np.std(gs, ddof=1) if len(gs) > 1 else np.nan, n_seeds=len(gs)))
        for a, b in PAIRS:
            for k in METRICS:
                ok = [s for s in seeds if (a, s) in vals and (b, s) in vals]
                if not ok: continue
                per_seed = {s: paired(vals[(a, s)][k], vals[(b, s)][k], k)['mean'] for s in ok}
                pooled = paired(np.concatenate([vals[(a, s)][k] for s in ok]), np.concatenate([vals[(b, s)][k] for s in ok]), k)
                diffs.append(dict(eval=what, n_pairs=n, row=a, against=b, metric=k, **pooled,
                                  seeds_agree=int(sum(np.sign(v) == np.sign(pooled['mean']) for v in per_seed.values())), n_seeds=len(ok),
                                  per_seed=' '.join(f'{v:+.4f}' for v in per_seed.values())))
    for r in (args[2].split(',') if len(args) > 2 else []):   # the teacher itself on the same sets
        m = json.loads((Path(r)/'metrics.json').read_text()); pp, what = m['per_pair'], eval_name(m)
        for k in METRICS:
            if k in pp.get('slim-teacher', {}):
                rows.append(dict(eval=what, n_pairs=m['n_pairs'], row='teacher', metric=k, mean=np.mean(pp['slim-teacher'][k]),
                                 gain_vs_bicubic=np.mean(np.asarray(pp['slim-teacher'][k]) - np.asarray(pp['bicubic'][k])), gain_std_over_seeds=np.nan, n_seeds=0))
    wide, pdiff = pd.DataFrame(rows), pd.DataFrame(diffs)
    tab.to_csv(dst/f'{name}.csv'); per.drop(columns='row').to_csv(dst/f'{name}_per_seed.csv', index=False)
    wide.to_csv(dst/f'{name}_wide.csv', index=False); pdiff.to_csv(dst/f'{name}_paired.csv', index=False)
    print(tab.round(4).to_string()); print(); print(wide[wide.metric == 'psnr'].round(4).to_string()); print(); print(pdiff.round(4).to_string())
    if not any(Path(r, 'variants', 'distill_none').exists() for r in slim[:1]) or pdiff.empty: sys.exit(0)   # partial rerun: no figure
    # figure: training L1 of each variant (seed 0) and the per-seed paired PSNR-Y differences on each evaluation set
    fig, ax = plt.subplots(1, 1 + len(comp), figsize=(4.2 * (1 + len(comp)), 3.4))
    # the training batches of a step are the same for every variant of a seed (batch_at), so the L1 difference isolates the distillation
    hist = lambda v: json.loads(next(Path(slim[0]).glob(f'variants/{v}/seed*/history.json')).read_text())
    seed0 = next(Path(slim[0]).glob('variants/distill_none/seed*')).name   # the first run's seed
    ref = pd.Series(hist('distill_none')['l1'])
    for v in ('distill_mse', 'full'):
        h = hist(v); ax[0].plot(h['step'], (pd.Series(h['l1']) - ref).rolling(100, min_periods=20).mean() * 1e3, label=f'{LABEL[ROW[v]]} − no distillation')
    ax[0].axhline(0, color='gray', lw=.8); ax[0].set_ylabel('ΔL1 × 1000'); ax[0].set_xlabel('step'); ax[0].legend(fontsize=8)
    ax[0].set_title(f'training L1 to HR vs no distillation, same batches ({seed0[:4]} {seed0[4:]}, rolling 100)', fontsize=8)
    for a, (r, what) in zip(ax[1:], [(r, compare_rows(r)[2]) for r in comp]):
        sub = pdiff[(pdiff['eval'] == what) & (pdiff.metric == 'psnr')]
        for i, x in enumerate(sub.itertuples()):
            pts = [float(v) for v in x.per_seed.split()]
            a.scatter([i] * len(pts), pts, color='k', s=14, zorder=3); a.bar(i, x.mean, color='tab:blue', alpha=.6)
            a.plot([i, i], [x.ci_lo, x.ci_hi], color='tab:red', lw=2)
        a.axhline(0, color='gray', lw=.8); a.set_xticks(range(len(sub))); a.set_xticklabels([f'{LABEL[x.row]}\nvs {LABEL[x.against]}' for x in sub.itertuples()], fontsize=7)
        a.set_title(f'paired Δ PSNR-Y, {what} (n={sub.n_pairs.iloc[0]})', fontsize=9); a.set_ylabel('dB')
    fig.tight_layout(); fig.savefig(dst.parent/'images'/f'{name}_cpu.png', dpi=110)
