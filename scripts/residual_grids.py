"""Collect the ablation grids rerun on the residual latent into `nbs/results_data/`, with reference rows on the runs' own held-out crops.

    .venv/bin/python scripts/residual_grids.py texadiff RUN_DIR        # a template-74 run: its tables, plus bicubic, the PSR alone
                                                                        # and the shipped TexADiff on the same crops -> texadiff_res_*
    .venv/bin/python scripts/residual_grids.py sgdm RUN_DIR[,RUN_DIR]  # template-92 runs (one per seed): per-seed rows and gains over
                                                                        # bicubic on each run's own crops -> sgdm_res_*

The crops are rebuilt from each run's parameters and the template defaults, as the templates draw them.
"""
import shutil, sys, json
from pathlib import Path
import pandas as pd, torch
sys.path.insert(0, str(Path(__file__).resolve().parent))
from ablation_tables import BIC_METRICS as M, run_params, metrics_row, texadiff_eval_pairs, sgdm_eval_pairs

DST = Path(__file__).resolve().parents[1]/'nbs'/'results_data'

def texadiff(run):
    from rsworkbench.registry import get_method
    run = Path(run); p, pairs = run_params(run, '74_texadiff_ablations.ipynb'), texadiff_eval_pairs(run)
    psr, tx = get_method(p['psr']), get_method('texadiff')
    ref = {'bicubic': metrics_row(pairs), f"psr ({p['psr']})": metrics_row(pairs, lambda l, h: psr(l)),
           'texadiff (shipped)': metrics_row(pairs, lambda l, h: tx(l)), 'n_crops': sum(len(l) for l, _ in pairs), 'run': run.name}
    (DST/'texadiff_res_reference.json').write_text(json.dumps(ref, indent=1))
    for name in ('incremental', 'mask_variants', 'per_seed'): shutil.copy(run/f'{name}.csv', DST/f'texadiff_res_{name}.csv')
    print(json.dumps(ref, indent=1))

def sgdm(runs):
    per, bic = [], []
    for r in runs:
        b = metrics_row(sgdm_eval_pairs(r))
        for s in run_params(r, '92_sgdm_ablations.ipynb')['seeds']: bic.append(dict(seed=s, run=Path(r).name, **b))
        per.append(pd.read_csv(Path(r)/'per_seed.csv'))
    bic, per = pd.DataFrame(bic).set_index('seed'), pd.concat(per, ignore_index=True)
    for m in M: per[f'{m}_gain'] = per[m] - per.seed.map(bic[m])
    per = per.sort_values(['study', 'variant', 'seed'], kind='stable')
    g = per.groupby(['study', 'variant'], sort=False)
    tab = g[[f'{m}_gain' for m in M] + ['fsim']].mean().join(g[['psnr_gain']].std().add_suffix('_std')).assign(n_seeds=g.size())
    tab['per_seed_psnr_gain'] = g['psnr_gain'].apply(lambda s: ' / '.join(f'{v:+.2f}' for v in s))
    per.to_csv(DST/'sgdm_res_per_seed.csv', index=False); tab.to_csv(DST/'sgdm_res_ablations.csv'); bic.reset_index().to_csv(DST/'sgdm_res_bicubic.csv', index=False)
    print(tab.round(3).to_string())

if __name__ == '__main__':
    if len(sys.argv) < 3: sys.exit(__doc__)
    torch.set_num_threads(1)
    what, runs = sys.argv[1], sys.argv[2]
    if what == 'texadiff': texadiff(runs)
    elif what == 'sgdm': sgdm(runs.split(','))
    else: sys.exit(f"unknown grid {what!r}: use 'texadiff' or 'sgdm'")
