"""Reference rows for a TexADiff ablation run (template 74): bicubic, the PSR stage alone and the shipped TexADiff on the run's own
held-out crops (rebuilt from its parameters and the template defaults, as template 73 draws them), and the run's tables copied into
`nbs/results_data/` under a prefix.

Usage: .venv/bin/python scripts/texadiff_reference_rows.py RUN_DIR PREFIX   (e.g. outputs/tex_res_abl/8c9aa90480 texadiff_res)
"""
import json, shutil, sys
from pathlib import Path
import torch, torch.nn.functional as F
from rsworkbench.core import from_pm1
from rsworkbench.experiments import template_params
from rsworkbench.metrics import compute_metrics
from rsworkbench.texadiff.train import texadiff_data, batch_at
from rsworkbench.registry import get_method

M = ['psnr', 'ssim', 'fsim', 'vsi', 'gmsd']
NBX = Path(__file__).resolve().parents[1]/'nbs'/'experiments'
torch.set_num_threads(1)
run, prefix = Path(sys.argv[1]), sys.argv[2]
p = {**template_params(NBX/'74_texadiff_ablations.ipynb'), **json.loads((run/'params.json').read_text())}
e = template_params(NBX/'73_texadiff_evaluate.ipynb')
dd = texadiff_data(p['data'], p['patch'], p['degradation'], e['val_fraction'], e['split_seed'])
pairs = [(b['lr'], b['hr']) for b in (batch_at(dd['val'], i, p['eval_batch']) for i in range(p['n_batches']))]

def row(fn):
    "Mean metrics of fn(lr) (in [-1, 1]) against the HR crops."
    rs = [compute_metrics(from_pm1(fn(l)).clamp(0, 1), from_pm1(h), M) for l, h in pairs]
    return {m: float(torch.cat([torch.as_tensor(r[m]).flatten() for r in rs]).mean()) for m in M}

bic = lambda l: F.interpolate(l, scale_factor=4, mode='bicubic', align_corners=False).clamp(-1, 1)
ref = {'bicubic': row(bic), f"psr ({p['psr']})": row(get_method(p['psr'])), 'texadiff (shipped)': row(get_method('texadiff')),
       'n_crops': sum(len(l) for l, _ in pairs), 'run': run.name}
dst = Path(__file__).resolve().parents[1]/'nbs'/'results_data'
(dst/f'{prefix}_reference.json').write_text(json.dumps(ref, indent=1))
for name in ('incremental', 'mask_variants', 'per_seed'): shutil.copy(run/f'{name}.csv', dst/f'{prefix}_{name}.csv')
print(json.dumps(ref, indent=1))
