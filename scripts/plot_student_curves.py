"""Training curves of the from-scratch SlimDiffSR students (outputs/slim_student_scratch/*): L1 relative to bicubic's, smoothed."""
import json, sys
from pathlib import Path
import numpy as np
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt

# usage: plot_student_curves.py OUT.png RUN_DIR [RUN_DIR ...] (run folders with history.json)
runs = [Path(d)/'history.json' for d in sys.argv[2:] if (Path(d)/'history.json').exists()]
if not runs: sys.exit('no finished runs (history.json) found')
fig, ax = plt.subplots(figsize=(6, 3))
for r in runs:
    h, p = json.loads(r.read_text()), json.loads((r.parent/'params.json').read_text())
    l1 = np.asarray(h['l1']); k = 100
    sm = np.convolve(l1, np.ones(k) / k, mode='valid')
    ax.plot(np.arange(k, len(l1) + 1), sm, lw=1, label=f"seed {p.get('seed')} ({h['minutes']:.0f} min)")
ax.set_xlabel('step'); ax.set_ylabel('training L1 ([-1, 1] scale, 100-step mean)'); ax.legend(); ax.set_title('SlimDiffSR student from scratch (CPU)')
fig.tight_layout()
out = Path(sys.argv[1]); fig.savefig(out, dpi=100); print(out)
