"""Training length: how the held-out gain of template-20 runs grows with their step budget.

Usage: python scripts/steps_table.py RUN [RUN ...] [--compare CMP [CMP ...]]
  RUN: a 20_train_sr_baseline run folder (metrics.json, history.json). Runs that share every parameter except
       max_steps / max_minutes / seed form one series; each run has its own cosine schedule, so only its last
       validation is a point of the budget curve (the intermediate ones are drawn as its curve).
  CMP: an 80_compare_methods run folder scoring those runs (with `versus`): its PSNR-Y/FSIM/VSI gains over
       bicubic and over the `versus` row, per-image means with 95% intervals over the images, go to nbs/results_data/sr_steps_eval.csv.
Writes nbs/results_data/sr_steps.csv and nbs/images/sr_steps.png, prints the table and, per series with
at least two budgets, a least-squares fit gain = a + b*log2(steps) with the budget it would need for +1.5 dB
(an extrapolation, printed as such).
"""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
from rsworkbench.experiments import paired_gains
from data_table import load as load_compare   # scripts/ is on sys.path when this runs as a script

ROOT = Path(__file__).resolve().parents[1]
VARY = ('max_steps', 'max_minutes', 'seed', 'device')   # what may differ within a series

def load(run):
    run = Path(run)
    if not (run/'metrics.json').exists() or not (run/'history.json').exists():
        raise SystemExit(f"{run}: not a finished 20_train_sr_baseline run (needs metrics.json and history.json)")
    m = json.loads((run/'metrics.json').read_text())
    h = json.loads((run/'history.json').read_text())
    if not h['val']: raise SystemExit(f"{run}: no validation in history.json")
    p = m['params']
    series = ' '.join(f'{k}={v}' for k, v in sorted(p.items()) if k not in VARY)
    last = h['val'][-1]
    return dict(run=run.name, series=series, seed=p['seed'], steps=last['step'], minutes=round(m['minutes'], 1),
                gain_db=last['gain_db'], best_gain_db=max(v['gain_db'] for v in h['val']), n_train=m['n_train'],
                n_val=m['n_val']), h['val']

def fit(df):
    "Least-squares gain = a + b*log2(steps) over a series' last points; None with fewer than two budgets."
    if df.steps.nunique() < 2: return None
    b, a = np.polyfit(np.log2(df.steps), df.gain_db, 1)
    return a, b

def compare_rows(run):
    "Per-image paired gains of every row over bicubic and over the run's `versus` row (PSNR-Y, FSIM, VSI)."
    m, tab, image_of, names = load_compare(run)
    unit = 'tiles' if m['params'].get('tiles') else 'centre crops'
    out = []
    for ref in ('bicubic', m['versus']) if m.get('versus') else ('bicubic',):
        for metric in ('psnr', 'fsim', 'vsi'):
            for row, g in paired_gains(tab, metric, base=ref, groups=image_of).iterrows():
                if row == 'bicubic': continue
                out.append(dict(eval=unit, n_pairs=len(names), row=row, minus=ref, metric=metric, **g.to_dict()))
    return out

def main(runs, compares=()):
    if not runs: raise SystemExit("give at least one template-20 run folder before --compare")
    loaded = [load(r) for r in runs]   # check every input before writing anything
    if compares:
        ev = pd.DataFrame([r for c in compares for r in compare_rows(c)]).astype(dict(wins=int, n=int))
        ev.round(4).to_csv(ROOT/'nbs'/'results_data'/'sr_steps_eval.csv', index=False)
        with pd.option_context('display.width', 200, 'display.max_rows', 200): print(ev[ev.metric == 'psnr'].round(3).to_string(index=False), '\n')
    curves = {row['run']: v for row, v in loaded}
    df = pd.DataFrame([row for row, _ in loaded]).sort_values(['series', 'steps', 'seed'])
    df.round(4).to_csv(ROOT/'nbs'/'results_data'/'sr_steps.csv', index=False)
    with pd.option_context('display.width', 200, 'display.max_columns', 20): print(df.round(3).to_string(index=False))
    import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for (series, g), c in zip(df.groupby('series'), plt.rcParams['axes.prop_cycle'].by_key()['color']):
        for r in g.itertuples():
            v = curves[r.run]
            ax.plot([p['step'] for p in v], [p['gain_db'] for p in v], color=c, alpha=0.35, lw=1)
        ax.plot(g.steps, g.gain_db, 'o', color=c, label=' '.join(w for w in series.split() if w.split('=')[0] in ('arch', 'data', 'batch', 'patch', 'lr')))
        ab = fit(g)
        if ab:
            a, b = ab; xs = np.geomspace(g.steps.min(), g.steps.max() * 4, 50)
            ax.plot(xs, a + b * np.log2(xs), '--', color=c, lw=1, label=f'fit: {a:+.2f} {b:+.3f}·log2(steps)')
            need = 2 ** ((1.5 - a) / b) if b > 0 else float('inf')
            print(f"{series}: gain = {a:+.3f} {b:+.4f}*log2(steps); +1.5 dB at about {need:,.0f} steps (extrapolated)")
    ax.axhline(1.5, color='k', ls=':', lw=0.8); ax.set_xscale('log', base=2)
    ax.set_xlabel('optimizer steps (each run: cosine schedule to its own budget)'); ax.set_ylabel('PSNR-Y gain over bicubic (dB)')
    ax.set_title('held-out gain vs training budget (dots: last step of each run; lines: its validation curve)', fontsize=9)
    ax.legend(fontsize=7); fig.tight_layout(); fig.savefig(ROOT/'nbs'/'images'/'sr_steps.png', dpi=110)

if __name__ == '__main__':
    if len(sys.argv) < 2: print(__doc__); sys.exit(2)
    args = sys.argv[1:]
    cut = args.index('--compare') if '--compare' in args else len(args)
    main(args[:cut], args[cut + 1:])
