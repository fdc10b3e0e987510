"""Copy a trained TexADiff, SGDM or SlimDiffSR-student pipeline, or a residual CNN, into the package as its embedded default.

    python scripts/ship_pipeline.py texadiff outputs/texadiff_f2/<run>/checkpoint --predictor outputs/texadiff_pred_f2/<run>/checkpoint \
        --spacing trailing --steps 2

Loads the checkpoint, optionally swaps in a trained RTDM predictor (TexADiff), sets the scheduler's timestep spacing and the
pipeline's `default_steps`, and writes fp32 safetensors (the residual CNN, `20_train_sr_baseline`'s <run>/checkpoint: fp16) to rsworkbench/assets/<name>_x<scale> (replaced as a whole, atomically;
`--dest DIR` writes a candidate elsewhere instead, to score it with scripts/inference_ablations.py --checkpoint DIR first).
"""
import argparse, shutil, tempfile
from pathlib import Path

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('method', choices=['texadiff', 'sgdm', 'slim-student', 'residual-cnn'])
    ap.add_argument('checkpoint')
    ap.add_argument('--predictor', help='RTDMPredictor folder (71_texadiff_train_predictor: <run>/checkpoint)')
    ap.add_argument('--spacing', choices=['leading', 'trailing', 'linspace'], help="the scheduler's timestep_spacing")
    ap.add_argument('--steps', type=int, help='default_steps saved with the pipeline')
    ap.add_argument('--style-temperature', type=float, help='SGDM: SFlow sampling temperature saved with the pipeline')
    ap.add_argument('--dest', help='write here instead of the package asset folder (to score a candidate before shipping it)')
    a = ap.parse_args()
    from rsworkbench.texadiff.pipeline import TexADiffPipeline, SHIPPED_TEXADIFF
    from rsworkbench.texadiff.rtdm import RTDMPredictor
    from rsworkbench.sgdm.pipeline import SGDMPipeline, SHIPPED_SGDM
    from rsworkbench.models.backbones import configure_sampler
    from rsworkbench.models.train import ResidualSRNet, SHIPPED
    from rsworkbench.slim.pipeline import SlimDiffSRPipeline, SHIPPED_STUDENT
    if a.method in ('residual-cnn', 'slim-student') and (a.predictor or a.spacing or a.steps or a.style_temperature is not None):
        raise SystemExit(f'{a.method} takes no sampler options')
    if a.method == 'slim-student':   # one step by design: nothing to configure (82_slim_distill's <run>/checkpoint)
        pipe, dest = SlimDiffSRPipeline.from_pretrained(a.checkpoint), SHIPPED_STUDENT
    elif a.method == 'residual-cnn':
        pipe = ResidualSRNet.from_pretrained(a.checkpoint).half()
        dest = SHIPPED.get(int(pipe.config.scale))
        if dest is None and not a.dest: raise SystemExit(f'no shipped residual-cnn slot for x{pipe.config.scale} (shipped: {sorted(SHIPPED)}); use --dest DIR')
    else:
        cls, dest = (TexADiffPipeline, SHIPPED_TEXADIFF) if a.method == 'texadiff' else (SGDMPipeline, SHIPPED_SGDM)
        pipe = cls.from_pretrained(a.checkpoint)
        if a.predictor:
            if a.method != 'texadiff': raise SystemExit('--predictor is for texadiff')
            pipe.register_modules(predictor=RTDMPredictor.from_pretrained(a.predictor))
        configure_sampler(pipe, a.spacing, a.steps, **({} if a.style_temperature is None else dict(style_temperature=a.style_temperature)))
    if a.dest: dest = Path(a.dest).resolve(); dest.parent.mkdir(parents=True, exist_ok=True)
    readme = dest/'README.md'
    keep = readme.read_text() if readme.exists() else None
    tmp = Path(tempfile.mkdtemp(dir=dest.parent))
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    if keep is not None: (tmp/'README.md').write_text(keep)
    if dest.exists(): shutil.rmtree(dest)
    tmp.rename(dest)
    for f in [dest, *dest.rglob('*')]: f.chmod(0o755 if f.is_dir() else 0o644)   # mkdtemp makes them private
    size = sum(f.stat().st_size for f in dest.rglob('*') if f.is_file())
    print(f"{dest}: {size / 1e6:.1f} MB")

if __name__ == '__main__': main()
