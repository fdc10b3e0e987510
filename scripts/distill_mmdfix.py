"""The 2026-12-06 MSE + MMD rerun (fixed MMD sampler) against the same seeds' old rows: writes nbs/results_data/slim_distill_mmdfix_vs_old.csv.
Old per-seed gains on the wide sets are not stored; they are reconstructed from slim_distill_wide.csv (3-seed means and seed std devs) and
slim_distill_paired.csv (per-seed paired differences): none_s = mean + e_s with sum(e) = 0, fixed by the two std devs of the MSE and MMD rows
(the |e|^2 check printed must match 2 std(none)^2). Run from the repository root after the template-83 (outputs/slim_distill_fix/*) and
template-80 (outputs/compare_mmdfix/*) runs.
Usage: .venv/bin/python scripts/distill_mmdfix.py
"""
import numpy as np, pandas as pd
w = pd.read_csv('nbs/results_data/slim_distill_wide.csv'); p = pd.read_csv('nbs/results_data/slim_distill_paired.csv')
out = {}
for ev in ('research-only scenes', 'held-out tiles'):
    g = lambda r, c: float(w[(w['eval'] == ev) & (w.row == r) & (w.metric == 'psnr')][c].iloc[0])
    d = lambda a, b: np.array([float(x) for x in p[(p['eval'] == ev) & (p.row == a) & (p.against == b) & (p.metric == 'psnr')].per_seed.iloc[0].split()])
    d1, d2 = d('mse', 'none'), d('mmd', 'mse')
    # none_s = m + e_s (sum e = 0); mse_s = none_s + d1_s; mmd_s = mse_s + d2_s; sample std (ddof 1) of each is known
    a, b = d1 - d1.mean(), (d1 + d2) - (d1 + d2).mean()
    Sn, Sm, Sk = [2 * g(r, 'gain_std_over_seeds') ** 2 for r in ('none', 'mse', 'mmd')]
    ea = (Sm - Sn - a @ a) / 2; eb = (Sk - Sn - b @ b) / 2          # e·a, e·b
    B = np.array([[1, -1, 0], [1, 1, -2]]) / np.array([[2 ** .5], [6 ** .5]])   # orthonormal basis of sum-zero vectors
    M = np.stack([B @ a, B @ b]); c = np.linalg.solve(M, [ea, eb]); e = B.T @ c
    none = g('none', 'gain_vs_bicubic') + e
    print(ev, 'check |e|^2', round(e @ e, 6), 'vs', round(Sn, 6))
    out[ev] = dict(none=none, mse=none + d1, mmd=none + d1 + d2)
    for k, v in out[ev].items(): print(' ', k, np.round(v, 4), 'mean', round(v.mean(), 4))

import json, glob
old = pd.read_csv('nbs/results_data/slim_distill_per_seed.csv'); rows = []
new = pd.concat([pd.read_csv(f) for f in sorted(glob.glob('outputs/slim_distill_fix/*/per_seed.csv'))])
for _, n in new.iterrows():
    o = old[old.seed == n.seed].set_index('variant')
    rows.append(dict(eval='template crops', n_pairs=32, seed=n.seed, new_mmd=n.gain_db, old_mmd=o.loc['full', 'gain_db'], old_mse=o.loc['distill_mse', 'gain_db'],
                     old_none=o.loc['distill_none', 'gain_db'], old_from='per_seed.csv (exact)'))
for r in sorted(glob.glob('outputs/compare_mmdfix/*/metrics.json')):
    m = json.load(open(r)); pp = m['per_pair']; ev = 'research-only scenes' if m['params'].get('eval_set') == 'research' else 'held-out tiles'
    for s in (0, 1):
        g = float((np.array(pp[f'slim-student:mmd{s}']['psnr']) - np.array(pp['bicubic']['psnr'])).mean())
        rows.append(dict(eval=ev, n_pairs=m['n_pairs'], seed=s, new_mmd=g, old_mmd=out[ev]['mmd'][s], old_mse=out[ev]['mse'][s], old_none=out[ev]['none'][s],
                         old_from='reconstructed from slim_distill_wide/paired.csv (means, seed std devs, per-seed paired differences; ±0.003 dB)'))
t = pd.DataFrame(rows).assign(new_minus_old_mse=lambda d: d.new_mmd - d.old_mse, new_minus_old_mmd=lambda d: d.new_mmd - d.old_mmd, new_minus_none=lambda d: d.new_mmd - d.old_none)
t.to_csv('nbs/results_data/slim_distill_mmdfix_vs_old.csv', index=False); print(t.drop(columns='old_from').round(4).to_string())
