#!/usr/bin/env bash
# Build the documentation site offline into _docs/: nbdev's notebook processing (without nbdev_proc_nbs' Quarto
# installer, which needs root and the network), then `smalldocs render` (pure Python, reads the same _quarto.yml).
# Where Quarto is installed, `nbdev_docs` builds the same site from the same files. API cross-links, which nbdev points at
# the published site (doc_host), are then pointed at the offline site's own pages (scripts/docs_links.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/python - <<'PY'
from nbdev.quarto import refresh_quarto_yml, nbdev_sidebar
from nbdev.serve import proc_nbs
import nbdev.doclinks
from nbdev.config import get_config
cfg = get_config()
refresh_quarto_yml()                      # nbs/nbdev.yml from settings.ini (our nbs/_quarto.yml is kept)
nbdev.doclinks._build_modidx()
nbdev_sidebar.__wrapped__(path=cfg.nbs_path)  # nbs/sidebar.yml
proc_nbs(cfg.nbs_path, n_workers=0)       # processed copies (show_doc rendered) into _proc/
# the tour and the tutorials are committed without outputs: run them here so their pages carry their figures
import os
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
for p in [Path('_proc/index.ipynb'), *sorted(Path('_proc/tutorials').glob('*.ipynb'))]:
    nb = read_nb(p); cwd = os.getcwd()
    try:
        os.chdir(p.parent); CaptureShell().run_all(nb, exc_stop=True)
    except Exception as e: raise SystemExit(f"docs: running {p.name} failed: {e}")
    finally: os.chdir(cwd)
    write_nb(nb, p); print(f"executed {p}")
PY
out=${1:-_docs}
case "$out" in /*) dest="$out" ;; *) dest="../$out" ;; esac   # output-dir is relative to _proc/
sed -i "s|output-dir: .*|output-dir: $dest|" _proc/nbdev.yml
.venv/bin/smalldocs render _proc
site=$(cd _proc && cd "$dest" && pwd)
.venv/bin/python scripts/docs_links.py _proc "$site"
.venv/bin/python scripts/docs_offline.py "$site"
echo "docs site: $site/index.html"
