#!/usr/bin/env bash
# Build the documentation site offline into _docs/: nbdev's notebook processing (without nbdev_proc_nbs' Quarto
# installer, which needs root and the network) and the run of the home page and tutorials (scripts/docs_proc.py), then
# `smalldocs render` (pure Python, reads the same _quarto.yml). Where Quarto is installed, `nbdev_docs` builds the same
# site from the same files. API cross-links, which nbdev points at the published site (doc_host), are then pointed at the
# offline site's own pages (scripts/docs_links.py), and the site is made to work with no network and from file://: KaTeX,
# search index as a script, live widgets on the pages that have them (scripts/docs_offline.py).
# The log is short: per-cell and per-page notices are counted and summarised (scripts/docs_proc.py).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
export HF_HUB_OFFLINE=1 MPLBACKEND=Agg
.venv/bin/python scripts/docs_proc.py
out=${1:-_docs}
case "$out" in /*) dest="$out" ;; *) dest="../$out" ;; esac   # output-dir is relative to _proc/
sed -i "s|output-dir: .*|output-dir: $dest|" _proc/nbdev.yml
.venv/bin/smalldocs render _proc 2>&1 | .venv/bin/python scripts/docs_proc.py smalldocs-log
site=$(cd _proc && cd "$dest" && pwd)
.venv/bin/python scripts/docs_links.py _proc "$site"
.venv/bin/python scripts/docs_offline.py "$site" _proc
echo "docs site: $site/index.html"
