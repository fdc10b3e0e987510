#!/usr/bin/env bash
# Set up, then run every test: notebooks and package in sync, nbdev_test, pytest. Offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg
bin=.venv/bin
snapshot() { find nbs rsworkbench -type f \( -name '*.ipynb' -o -name '*.py' \) -not -path '*/.ipynb_checkpoints/*' -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum; }
before=$(snapshot)
$bin/nbdev_export
$bin/nbdev_clean
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "FAIL: nbdev_export or nbdev_clean changed files: the package and notebooks are out of sync. Changed:" >&2
  diff <(echo "$before") <(echo "$after") | grep '^[<>]' | awk '{print $3}' | sort -u >&2
  exit 1
fi
echo "== nbdev_test =="
OMP_NUM_THREADS=1 $bin/nbdev_test --n_workers 2 --timing
echo "== pytest =="
$bin/python -m pytest -q -m "not gpu and not fullsize" "$@"
