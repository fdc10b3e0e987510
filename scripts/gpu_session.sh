#!/usr/bin/env bash
# One lent-GPU call for issue #8's GPU items, prepared by scripts/gpu_kit.py (run that here first: it writes .gpu/kit.tar.xz):
#   device run: command "bash scripts/gpu_session.sh", carry [".gpu"], timeout_s 600
# Steps, each under its own time limit so the whole call ends inside 600 s and whatever finished comes back under $OUT:
#   cnn    the issue's reference: the 1.5M-parameter residual CNN (template 20, papermill) trained for RSW_CNN_MINUTES (4) on the
#          clean-licence images, PSNR-Y against bicubic on the held-out images (FSIM, VSI etc. need pyiqa: score the returned
#          checkpoint back here)
#   bench  `rsw bench --device cuda` eager (all methods and blocks) and compiled (RSW_COMPILED_ARGS: by default the residual CNN,
#          the SlimDiffSR student and their blocks, since compiling the SD-size UNets would not fit the call), no scene rows
#          (they need rasterio)
#   tests  the `gpu`-marked tests that need nothing beyond the kit, among them every shipped default on CUDA against the CPU
#          (tests/test_gpu_methods.py); Real-ESRGAN's needs its 33 MB weights: deselected
#   rw     (not in the default steps; a call of its own: RSW_STEPS=rw) issue #32's small real-world variants, each trained on from
#          its shipped checkpoint for RSW_RW_MINUTES (3.5): residual-cnn (template 20, batch 16, patch 96) and slim-student (template
#          82, the shipped recipe: residual, tiny-f2, distill none, batch 8, patch 64), `clean+extra`, preset slimdiffsr, plain-HR targets as shipped
#          (RSW_RW_USM=True: USM-sharpened); returns rw.tar (both run folders less optimizer state): score them back here with template 80
#          (tiles=true draws=4, and eval_set=research) before shipping anything
# What comes back (the device returns at most 8 files), each written as soon as its step ends: summary.txt, gpu.txt, cnn.tar (the
# CNN run folder: metrics, params, history, curves, executed notebook and checkpoint; not the optimizer state), bench.md/.csv,
# bench_compiled.md/.csv, gpu_tests.log. Step time limits (330 + 90 + 90 + 60 s) keep the call inside timeout_s 600.
# RSW_STEPS picks steps (default "cnn,bench,tests"); RSW_BENCH_ARGS adds rsw bench options. Rehearse here on the CPU, without the
# geo stack and the packages the device lacks, with:
#   RSW_REHEARSE=1 RSW_BENCH_ARGS="--methods bicubic --blocks taesd-decode --repeats 1" RSW_COMPILED_ARGS="--methods bicubic --blocks taesd-decode --repeats 1" bash scripts/gpu_session.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/rsw_gpu_out}; W=/tmp/rsw_gpu_work; rm -rf "$W"; mkdir -p "$OUT" "$W"
STEPS=${RSW_STEPS:-cnn,bench,tests}
CNN_MIN=${RSW_CNN_MINUTES:-4}
RW_MIN=${RSW_RW_MINUTES:-3.5}
PY=python3; DEV=cuda; TS=1
K=/tmp/rsw_kit
export PYTHONUNBUFFERED=1 RSW_SHARED_DATA=$K/data HF_HUB_OFFLINE=1 MPLBACKEND=Agg
[ -f .gpu/kit.tar.xz ] || { echo "gpu_session: .gpu/kit.tar.xz is missing: run python scripts/gpu_kit.py here and carry .gpu"; exit 2; }
# the kit: unpacked wheels (zipped back below) and the clean images, less those the repository's data/ holds byte for byte
rm -rf "$K"; mkdir -p "$K" && tar -xJf .gpu/kit.tar.xz -C "$K" || exit 1
while IFS=$'\t' read -r rel repo; do mkdir -p "$K/data/$(dirname "$rel")" && cp "$repo" "$K/data/$rel" || exit 1; done < "$K/data/SAME_AS_REPO.tsv"
if [ "${RSW_REHEARSE:-0}" = 1 ]; then   # this machine: its venv, the CPU, and a Python where the packages the device lacks cannot be imported
  PY=.venv/bin/python; DEV=cpu; CNN_MIN=${RSW_CNN_MINUTES:-0.3}; RW_MIN=${RSW_RW_MINUTES:-0.3}; TS=5   # the CPU is slower: longer step limits
  mkdir -p /tmp/rsw_nogeo && cat > /tmp/rsw_nogeo/sitecustomize.py <<'EOF'
import sys
for n in ('rasterio', 'rioxarray', 'pyproj', 'affine', 'dask', 'distributed', 'folium', 'pyiqa', 'lpips', 'jedi', 'debugpy', 'nbdev'): sys.modules[n] = None
EOF
  export PYTHONPATH=/tmp/rsw_nogeo:$PWD
else
  mkdir -p "$K/wheels" && for d in "$K"/whl/*.whl; do (cd "$d" && $PY -m zipfile -c "$K/wheels/$(basename "$d")" .) || exit 1; done
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$K"/wheels/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
fi
$PY -m ipykernel install --prefix /tmp/kp --name python3 >/dev/null && export JUPYTER_PATH=/tmp/kp/share/jupyter
RSW=($PY -c 'import sys; from rsworkbench.cli import main; sys.exit(main(sys.argv[1:]))')
say() { echo "== $(date +%T) $*" | tee -a "$W/summary.txt"; }
fails=0
if [[ $STEPS == *cnn* ]]; then
  say "residual CNN, ${CNN_MIN} min on $DEV"
  timeout $(( 90 + ${CNN_MIN%.*} * 60 )) "${RSW[@]}" train 20_train_sr_baseline --exp gpu_cnn --out-root "$W/runs" \
      -p device=$DEV -p max_minutes=$CNN_MIN -p max_steps=20000 -p val_every=500 -p threads=4 2>&1 | tail -3 || fails=$((fails + 1))
  $PY -c "import json, glob; m = json.load(open(glob.glob('$W/runs/gpu_cnn/*/metrics.json')[0]))
print({k: m.get(k) for k in ('steps', 'best_step', 'minutes', 'psnr', 'bicubic_psnr', 'gain_db', 'ssim', 'bicubic_ssim')})" 2>&1 | tee -a "$W/summary.txt"
  tar -cf "$OUT/cnn.tar" --exclude=last -C "$W/runs" . ; cp "$W/summary.txt" "$OUT/"
fi
if [[ $STEPS == *rw* ]]; then   # issue #32: the two small real-world variants, trained on for RSW_RW_MINUTES each from their shipped checkpoints
  A=$PWD/rsworkbench/assets
  say "residual-cnn realworld, ${RW_MIN} min on $DEV"
  timeout $(( 120 + ${RW_MIN%.*} * 60 )) "${RSW[@]}" train 20_train_sr_baseline --exp gpu_rw_cnn --out-root "$W/runs_rw" \
      -p data=clean+extra -p degradation=slimdiffsr -p init=$A/residual_cnn_x4_realworld -p usm_target=${RSW_RW_USM:-False} \
      -p learning_rate=0.0001 -p batch=16 -p patch=96 -p device=$DEV -p max_minutes=$RW_MIN -p max_steps=${RSW_RW_STEPS:-20000} \
      -p val_every=500 -p threads=8 2>&1 | tail -3 || fails=$((fails + 1))
  $PY -c "import json, glob; m = json.load(open(glob.glob('$W/runs_rw/gpu_rw_cnn/*/metrics.json')[0]))
print({k: m.get(k) for k in ('steps', 'best_step', 'minutes', 'psnr', 'bicubic_psnr', 'gain_db')})" 2>&1 | tee -a "$W/summary.txt"
  say "slim-student realworld, ${RW_MIN} min on $DEV"
  timeout $(( 120 + ${RW_MIN%.*} * 60 )) "${RSW[@]}" train 82_slim_distill --exp gpu_rw_student --out-root "$W/runs_rw" \
      -p init=$A/slim_student_x4_realworld -p residual=True -p taesd=tiny-f2 -p distill=none -p lambda_lpips=0 -p lambda_gan=0 \
      -p data=clean+extra -p degradation=slimdiffsr -p usm_target=${RSW_RW_USM:-False} -p patch=64 -p batch=8 -p learning_rate=0.00005 \
      -p device=$DEV -p max_minutes=$RW_MIN -p max_steps=${RSW_RW_STEPS:-20000} -p ckpt_every=1000 -p threads=8 2>&1 | tail -3 || fails=$((fails + 1))
  tar -cf "$OUT/rw.tar" --exclude=last -C "$W/runs_rw" . ; cp "$W/summary.txt" "$OUT/"
fi
if [[ $STEPS == *bench* ]]; then
  say "rsw bench eager"
  timeout $((90 * TS)) "${RSW[@]}" bench --device $DEV --no-scene ${RSW_BENCH_ARGS:-} --out "$W/bench" 2>&1 | tail -2 || fails=$((fails + 1))
  for f in md csv; do cp "$W/bench/bench.$f" "$OUT/bench.$f" 2>/dev/null; done
  say "rsw bench compiled"
  timeout $((90 * TS)) "${RSW[@]}" bench --device $DEV --no-scene --compile ${RSW_COMPILED_ARGS:---methods residual-cnn,slim-student --blocks slim-student,rrdbnet-x4,taesd-decode} \
      --out "$W/bench_compiled" 2>&1 | tail -2 || fails=$((fails + 1))
  for f in md csv; do cp "$W/bench_compiled/bench.$f" "$OUT/bench_compiled.$f" 2>/dev/null; done
  cat "$OUT"/bench*.md 2>/dev/null; cp "$W/summary.txt" "$OUT/"
fi
if [[ $STEPS == *tests* ]]; then
  say "gpu tests"
  timeout $((60 * TS)) $PY -m pytest -q -m gpu -p no:cacheprovider tests/test_backbones.py tests/test_degrade.py tests/test_baselines.py tests/test_gpu_methods.py \
      --deselect tests/test_baselines.py::test_realesrgan_cuda_fp16_matches_cpu 2>&1 | tee "$OUT/gpu_tests.log" | tail -3 | tee -a "$W/summary.txt" || fails=$((fails + 1))
fi
say "done, $fails step(s) failed"
cp "$W/summary.txt" "$OUT/summary.txt"; ls -l "$OUT"
exit $fails
