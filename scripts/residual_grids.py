"""Collect the ablation grids rerun on the residual latent into `nbs/results_data/`, with reference rows on the runs' own held-out crops.

    .venv/bin/python scripts/residual_grids.py texadiff RUN_DIR        # a template-74 run: its tables, plus bicubic, the PSR alone
                                                                        # and the shipped TexADiff on the same crops -> texadiff_res_*
    .venv/bin/python scripts/residual_grids.py sgdm RUN_DIR[,RUN_DIR]  # template-92 runs (one per seed): per-seed rows and gains over
                                                                        # bicubic on each run's own crops -> sgdm_res_*

The crops are rebuilt from each run's parameters and the template defaults, as the templates draw them.
"""
import json, shutil, sys
from pathlib import Path
import pandas as pd, torch, torch.nn.functional as F
from rsworkbench.core import from_pm1
from rsworkbench.experiments import template_params
from rsworkbench.metrics import compute_metrics

M = ['psnr', 'ssim', 'fsim', 'vsi', 'gmsd']
NBX = Path(__file__).resolve().parents[1]/'nbs'/'experiments'
DST = Path(__file__).resolve().parents[1]/'nbs'/'results_data'

def params(run, template):
    "A run's parameters with the template's defaults for those it did not set."
    return {**template_params(NBX/template), **json.loads((Path(run)/'params.json').read_text())}

def row(pairs, fn):
    "Mean metrics of fn(lr) (in [-1, 1]) against the HR crops of (lr, hr) pairs in [-1, 1]."
    rs = [compute_metrics(from_pm1(fn(l, h)).clamp(0, 1), from_pm1(h), M) for l, h in pairs]
    return {m: float(torch.cat([torch.as_tensor(r[m]).flatten() for r in rs]).mean()) for m in M}

bicubic = lambda l, h: F.interpolate(l, size=h.shape[-2:], mode='bicubic', align_corners=False).clamp(-1, 1)

def texadiff(run):
    from rsworkbench.texadiff.train import texadiff_data, batch_at
    from rsworkbench.registry import get_method
    run = Path(run); p, e = params(run, '74_texadiff_ablations.ipynb'), template_params(NBX/'73_texadiff_evaluate.ipynb')
    dd = texadiff_data(p['data'], p['patch'], p['degradation'], e['val_fraction'], e['split_seed'])
    pairs = [(b['lr'], b['hr']) for b in (batch_at(dd['val'], i, p['eval_batch']) for i in range(p['n_batches']))]
    psr, tx = get_method(p['psr']), get_method('texadiff')
    ref = {'bicubic': row(pairs, bicubic), f"psr ({p['psr']})": row(pairs, lambda l, h: psr(l)), 'texadiff (shipped)': row(pairs, lambda l, h: tx(l)),
           'n_crops': sum(len(l) for l, _ in pairs), 'run': run.name}
    (DST/'texadiff_res_reference.json').write_text(json.dumps(ref, indent=1))
    for name in ('incremental', 'mask_variants', 'per_seed'): shutil.copy(run/f'{name}.csv', DST/f'texadiff_res_{name}.csv')
    print(json.dumps(ref, indent=1))

def sgdm(runs):
    from rsworkbench.sgdm.train import sgdm_pairs, split_pairs, map_batches
    per, bic = [], []
    for r in runs:
        p = params(r, '92_sgdm_ablations.ipynb')
        _, ev = split_pairs(sgdm_pairs(p['maps']), p['holdout'], p['holdout_pairs'])
        eb = map_batches(ev, p['hr_size'], p['scale'], 1, p['seeds'][0] + 1000)   # the template's held-out crops
        b = row([next(eb)[:2] for _ in range(p['n_eval'])], bicubic)
        for s in p['seeds']: bic.append(dict(seed=s, run=Path(r).name, **b))
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
    torch.set_num_threads(1)
    what, runs = sys.argv[1], sys.argv[2]
    if what == 'texadiff': texadiff(runs)
    elif what == 'sgdm': sgdm(runs.split(','))
    else: sys.exit(f"unknown grid {what!r}: use 'texadiff' or 'sgdm'")
