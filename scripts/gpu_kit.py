"""Pack what a lent-GPU call needs into `.gpu/` (git-ignored) and check that it fits the device's 64 MiB upload limit.

    python scripts/gpu_kit.py            # here, once: needs ../shared/data and the wheels of ../shared/tools/gpu-wheels in .whl/

Then one device call (timeout_s 600) with carry [".gpu"] and the command `bash scripts/gpu_session.sh`.

What travels is the repository's tracked files (~47 MB, most of it the shipped checkpoints) plus `.gpu/kit.tar.xz`, one xz
archive (the 64 MiB limit counts bytes sent, and neither the wheels' zips nor the uncompressed GeoTIFFs are small):
- `whl/<wheel>/`: the wheels the device image lacks for training, papermill templates and benchmarks (diffusers, fastcore,
  papermill and its Jupyter stack), unpacked (their zip compression is poor: 10.9 MiB of wheels are 4.9 MiB here);
  `gpu_session.sh` zips them back into wheels and pip-installs them. Not the geo stack: rasterio's wheel alone is 39 MB, so the
  device runs without it (data.io reads the images with Pillow/tifffile there; georeferenced output and `rsw scene` are not
  available). Not jedi/debugpy (optional for IPython/ipykernel), dask, nbdev, pyiqa/lpips (FSIM, VSI and the other pyiqa metrics
  are computed back here from the returned checkpoints).
- `data/`: the clean-licence images of ../shared/data (`shared_images(clean_only=True)`, same relative paths, so the file-name
  hash split `split_files` holds out the same images) and its MANIFEST.tsv / SOURCES.md, except the images that the repository's
  own `data/` already holds byte for byte: those are listed in `data/SAME_AS_REPO.tsv` and copied from `data/` on the device.
  Research-only groups and the masks/vectors are not packed (SGDM's paired maps do not fit beside them).
"""
import argparse, hashlib, shutil, subprocess, sys, tarfile, tempfile, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 64 * 2**20
# wheels from ../shared/tools/gpu-wheels that the device calls need (name prefixes, as pip writes them)
NEEDED = ('diffusers', 'importlib_metadata', 'fastcore', 'papermill', 'nbclient', 'nbformat', 'jupyter_client', 'jupyter_core',
          'ipykernel', 'ipython', 'traitlets', 'tornado', 'pyzmq', 'comm', 'matplotlib_inline', 'prompt_toolkit', 'parso', 'pexpect',
          'ptyprocess', 'stack_data', 'executing', 'asttokens', 'pure_eval', 'decorator', 'wcwidth', 'nest_asyncio',
          'fastjsonschema', 'jsonschema', 'jsonschema_specifications', 'referencing', 'rpds_py', 'tenacity', 'ansicolors',
          'entrypoints', 'platformdirs', 'python_dateutil')

def _dist_name(wheel: Path) -> str: return wheel.name.split('-')[0].lower()

def tree_bytes() -> int:
    "Bytes of what a device call sends besides `carry`: tracked files and untracked files git does not ignore."
    out = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT, capture_output=True, check=True).stdout
    return sum((ROOT/f).stat().st_size for f in out.decode().split('\0') if f and (ROOT/f).is_file())

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--wheels', default=str(ROOT/'.whl'), help='folder of gpu-wheels downloads')
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from rsworkbench.core import shared_data_dir
    from rsworkbench.data.datasets import shared_images
    src = shared_data_dir()
    if src is None: raise SystemExit('gpu_kit: ../shared/data is absent')
    whl = Path(a.wheels)
    have = {_dist_name(w): w for w in sorted(whl.glob('*.whl'))} if whl.is_dir() else {}
    missing = [n for n in NEEDED if n.lower() not in have]
    if missing: raise SystemExit(f'gpu_kit: wheels missing from {whl}: {missing}; run ../shared/tools/gpu-wheels first')
    kit = ROOT/'.gpu'
    if kit.exists(): shutil.rmtree(kit)
    kit.mkdir()
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp)
        for n in NEEDED:   # unpacked: xz compresses the wheels' contents far better than their zips
            with zipfile.ZipFile(have[n.lower()]) as z: z.extractall(stage/'whl'/have[n.lower()].name)
        same = _pack_data(src, stage/'data', shared_images(clean_only=True).values())
        with tarfile.open(kit/'kit.tar.xz', 'w:xz', preset=9) as t: t.add(stage, arcname='.')
    total = tree_bytes() + (kit/'kit.tar.xz').stat().st_size
    print(f"repository {tree_bytes() / 2**20:.1f} MiB + kit.tar.xz {(kit/'kit.tar.xz').stat().st_size / 2**20:.1f} MiB "
          f"({same} images taken from the repository's data/) = {total / 2**20:.1f} MiB of the {LIMIT / 2**20:.0f} MiB limit")
    if total > LIMIT: raise SystemExit('gpu_kit: over the upload limit; carry less data')

def _sha1(f: Path) -> str: return hashlib.sha1(f.read_bytes()).hexdigest()

def _pack_data(src: Path, dest: Path, groups) -> int:
    "Copy the clean images under `dest` (paths relative to `src`), listing instead those the repository's data/ holds."
    repo = {_sha1(f): f.relative_to(ROOT).as_posix() for f in (ROOT/'data').rglob('*') if f.is_file()}
    same = []
    for files in groups:   # the images the 'clean' training data read (not their masks or vectors)
        for f in files:
            rel = f.relative_to(src).as_posix()
            if _sha1(f) in repo: same.append(f'{rel}\t{repo[_sha1(f)]}'); continue
            d = dest/rel; d.parent.mkdir(parents=True, exist_ok=True); shutil.copy2(f, d)
    for f in ('MANIFEST.tsv', 'SOURCES.md'):
        if (src/f).exists(): shutil.copy2(src/f, dest/f)
    (dest/'SAME_AS_REPO.tsv').write_text(''.join(l + '\n' for l in same))
    return len(same)

if __name__ == '__main__': main()
