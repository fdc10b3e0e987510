"""Training data ablation: models trained on data='clean' vs data='all', scored by 80_compare_methods on the data='all' held-out split.

Usage: python scripts/data_table.py RUN [RUN ...]
  RUN: an 80_compare_methods run folder whose rows include pairs '<method>:clean-s<seed>' / '<method>:all-s<seed>'
       (e.g. 'residual-cnn:clean-s0' and 'residual-cnn:all-s0'; a centre-crop run, and optionally a tiles=True run of the same rows).
Writes nbs/results_data/sr_data_{gains,paired,by_group}.csv and nbs/images/sr_data_by_image.png, and prints the tables.
Statistics are over the images (per-image mean over a run's pairs), Student-t 95% intervals, as in `experiments.paired_gains`.
"""
import json, re, sys
from pathlib import Path
import numpy as np, pandas as pd
from rsworkbench.experiments import paired_gains

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r'^([\w-]+):(clean|all)-s(\d+)$')

def load(run):
    m = json.loads((Path(run)/'metrics.json').read_text())
    pp = {k: v for k, v in m['per_pair'].items() if k != 'names'}
    tab = pd.DataFrame(); tab.attrs['per_pair'] = pp
    names = m['per_pair']['names']
    return m, tab, [n.split('@')[0] for n in names], names

def main(runs):
    gains, paired, groups, per_image = [], [], [], {}
    for run in runs:
        m, tab, image_of, names = load(run)
        unit = 'tiles' if m['params'].get('tiles') else 'centre crops'
        keys = sorted({(ROW.match(k)[1], int(ROW.match(k)[3])) for k in tab.attrs['per_pair'] if ROW.match(k)})
        keys = [(m_, s) for m_, s in keys if all(f'{m_}:{d}-s{s}' in tab.attrs['per_pair'] for d in ('clean', 'all'))]
        if not keys: raise SystemExit(f"{run}: no '<method>:clean-s<seed>' / '<method>:all-s<seed>' row pairs")
        g = paired_gains(tab, 'psnr', groups=image_of)   # over bicubic, per image
        for k, r in g.iterrows():
            gains.append(dict(eval=unit, row=k, n_pairs=len(names), **r.to_dict()))
        for meth, s in keys:
            clean, full = f'{meth}:clean-s{s}', f'{meth}:all-s{s}'
            for metric in ('psnr', 'ssim', 'fsim', 'vsi'):
                d = paired_gains(tab, metric, base=clean, groups=image_of).loc[full]
                paired.append(dict(eval=unit, method=meth, seed=s, metric=metric, n_pairs=len(names), **d.to_dict()))
            diff = np.asarray(tab.attrs['per_pair'][full]['psnr']) - np.asarray(tab.attrs['per_pair'][clean]['psnr'])
            img = pd.Series(diff).groupby(pd.Series(image_of)).mean()
            if unit == 'centre crops': per_image[f'{meth}, seed {s}'] = img
            grp = img.groupby(img.index.str.split('/').str[0])
            for gname, v in grp: groups.append(dict(eval=unit, method=meth, seed=s, group=gname, n_images=len(v), all_minus_clean_db=float(v.mean())))
    out = ROOT/'nbs'/'results_data'
    gains, paired = (pd.DataFrame(d).astype(dict(wins=int, n=int)) for d in (gains, paired))
    gains.round(4).to_csv(out/'sr_data_gains.csv', index=False)
    paired.round(4).to_csv(out/'sr_data_paired.csv', index=False)
    pd.DataFrame(groups).round(4).to_csv(out/'sr_data_by_group.csv', index=False)
    with pd.option_context('display.width', 200, 'display.max_columns', 20):
        print(gains.round(3).to_string(index=False), '\n')
        print(paired.round(4).to_string(index=False), '\n')
        print(pd.DataFrame(groups).round(3).to_string(index=False))
    if per_image:
        import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
        df = pd.DataFrame(per_image)
        fig, ax = plt.subplots(figsize=(9, 3.2))
        x = np.arange(len(df)); w = 0.8 / df.shape[1]
        for i, s in enumerate(df.columns): ax.bar(x + i * w - 0.4 + w / 2, df[s], w, label=s)
        ax.axhline(0, color='k', lw=0.5); ax.set_xticks(x)
        ax.set_xticklabels([n.split('/')[0][:6] + ' ' + '/'.join(n.split('/')[1:])[-12:] for n in df.index], rotation=60, ha='right', fontsize=7)
        ax.set_ylabel('PSNR-Y, all − clean (dB)'); ax.set_title("trained on data='all' minus trained on data='clean', per held-out image (centre crops)", fontsize=9)
        ax.legend(fontsize=8); fig.tight_layout()
        fig.savefig(ROOT/'nbs'/'images'/'sr_data_by_image.png', dpi=110)

if __name__ == '__main__':
    if len(sys.argv) < 2: print(__doc__); sys.exit(2)
    main(sys.argv[1:])
