"""Full-size forward passes (issue #28): the real SD 2.1-base / sd-turbo / SDXL-base-1.0 layouts, random weights, on the CPU.

`models.backbones.materialize_weights` writes a real-layout weights folder (diffusers `save_pretrained`, safetensors,
published configs) once into `$RSW_FULLSIZE_DIR` (default `~/.cache/rsworkbench/fullsize`; about 12 GB on disk for
all five backbones in fp16, written per backbone on first use and reused); `RSW_WEIGHTS` points there and every
method is built through its public API. Each test writes its wall time and the process's peak RSS to
`outputs/fullsize/<test>.json` (peak RSS is the whole pytest process's so far: run one test per process,
`pytest -m fullsize -k NAME`, to get a test's own). Marked `fullsize`: not in the default run (scripts/test.sh);
`.ci/run` runs the SD 2.1 layout test. Nothing is timed in an assertion.
"""
import gc, json, os, resource, time, warnings
from contextlib import contextmanager
from pathlib import Path
import pytest, torch

pytestmark = [pytest.mark.fullsize, pytest.mark.timeout(3600)]

ROOT = Path(os.environ.get('RSW_FULLSIZE_DIR', Path.home()/'.cache'/'rsworkbench'/'fullsize'))
OUT = Path(__file__).resolve().parents[1]/'outputs'/'fullsize'
GB = 2 ** 30


def _rss_peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB   # Linux: kB


@contextmanager
def record(name, **info):
    "Wall time and peak RSS of the block, printed and written to outputs/fullsize/<name>.json; `info` collects numbers."
    gc.collect()
    t0 = time.time()
    yield info
    row = dict(test=name, wall_s=round(time.time() - t0, 1), peak_rss_gb=round(_rss_peak_gb(), 2),
               threads=torch.get_num_threads(), **info)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT/f'{name}.json').write_text(json.dumps(row, indent=1, default=str))
    print(json.dumps(row, default=str))


@pytest.fixture
def weights(monkeypatch):
    "Materialise the named backbones (once; complete ones are kept) and point RSW_WEIGHTS at the folder."
    from rsworkbench.models.backbones import materialize_weights
    monkeypatch.setenv('RSW_WEIGHTS', str(ROOT))
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    def get(*names):
        materialize_weights(ROOT, names, progress=print)
        return ROOT
    yield get
    gc.collect()


def _pm1(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _changed(before: dict, module) -> int:
    "How many of the parameters in `before` (name → tensor copy) differ in `module` now."
    now = dict(module.named_parameters())
    return sum(not torch.equal(v, now[k].detach()) for k, v in before.items())


# ---- (a) layouts and published sizes, through the real loaders ----

def test_sd21_layout_counts_and_forward(weights):
    "SD 2.1-base: the folder checks clean, the loaders give the published sizes, prompt → text encoder → UNet forward."
    from rsworkbench.models.backbones import (check_weights_folder, build_unet, build_vae, build_taesd, build_text_encoders,
                                              count_params)
    root = weights('sd21-base', 'taesd')
    with record('sd21_layout_counts_and_forward') as info:
        rows = check_weights_folder(root/'sd21-base')
        assert all(r['layout_ok'] for r in rows), [r for r in rows if not r['layout_ok']]
        from rsworkbench.cli import main
        assert main(['weights', '--check', str(root/'sd21-base')]) == 0      # `rsw weights --check DIR` accepts the folder
        assert {r['component']: r['params'] for r in rows if r['params']} == {
            'unet': 865_910_724, 'vae': 83_653_863, 'text_encoder': 340_387_840}
        te = build_text_encoders('sd21-base')
        assert te.source == str(root/'sd21-base') and (te.kind, te.cross_attention_dim, te.pooled_dim) == ('sd', 1024, None)
        info['text_encoder_params'] = count_params(te)
        assert info['text_encoder_params'] == 340_387_840
        t0 = time.time(); hidden, pooled = te.encode(['a satellite image of a harbour, sharp', ''])
        info['encode_s'] = round(time.time() - t0, 2)
        assert hidden.shape == (2, 77, 1024) and pooled is None and not torch.allclose(hidden[0], hidden[1])
        del te; gc.collect()
        vae, taesd = build_vae('sd21-base'), build_taesd('sd21-base')
        assert (count_params(vae), count_params(taesd)) == (83_653_863, 2_445_063)
        del vae, taesd
        unet = build_unet('sd21-base')
        info['unet_params'] = count_params(unet)
        assert info['unet_params'] == 865_910_724                     # the published 865.9M
        x = _pm1(2, 4, 16, 16)
        with torch.no_grad():
            t0 = time.time(); y = unet(x, torch.tensor([500, 500]), encoder_hidden_states=hidden).sample
            info['unet_forward_s'] = round(time.time() - t0, 2)
        assert y.shape == x.shape and torch.isfinite(y).all()
        assert not torch.allclose(y[0], y[1])                         # the two prompts lead to two outputs


def test_sdxl_layout_and_counts(weights):
    "SDXL-base-1.0: the published 2,567.5M UNet (loaded in bf16), both text encoders, the VAE and TAESDXL."
    from rsworkbench.models.backbones import (check_weights_folder, build_unet, build_vae, build_taesd, build_text_encoders,
                                              count_params)
    root = weights('sdxl', 'taesdxl')
    with record('sdxl_layout_and_counts') as info:
        rows = check_weights_folder(root/'sdxl') + check_weights_folder(root/'taesdxl')
        assert all(r['layout_ok'] for r in rows), [r for r in rows if not r['layout_ok']]
        assert {r['component']: r['params'] for r in rows if r['name'] == 'sdxl' and r['params']} == {
            'unet': 2_567_463_684, 'vae': 83_653_863, 'text_encoder': 123_060_480, 'text_encoder_2': 694_659_840}
        te = build_text_encoders('sdxl', dtype='bf16')
        assert (te.kind, te.cross_attention_dim, te.pooled_dim) == ('sdxl', 2048, 1280)
        assert [count_params(e) for e in te.encoders] == [123_060_480, 694_659_840]
        hidden, pooled = te.encode(['a satellite image of a harbour'])
        assert hidden.shape == (1, 77, 2048) and pooled.shape == (1, 1280)
        del te; gc.collect()
        assert count_params(build_vae('sdxl')) == 83_653_863 and count_params(build_taesd('sdxl')) == 2_445_063
        gc.collect()
        unet = build_unet('sdxl', dtype='bf16')
        info['unet_params'] = count_params(unet)
        assert info['unet_params'] == 2_567_463_684 and unet.dtype == torch.bfloat16   # the published 2,567.5M
        del unet


# ---- (c) TexADiff ----

def test_texadiff_sdxl_cfg_ta_step(weights):
    "TexADiff on SDXL (bf16): build_pipeline with the backbone's text encoders, CFG 5 and TA-sampling, 32x32 -> 128x128."
    from rsworkbench.texadiff.pipeline import build_pipeline
    weights('sdxl')
    with record('texadiff_sdxl_cfg_ta_step') as info:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='build_pipeline: the RTDM predictor is untrained')
            t0 = time.time(); pipe = build_pipeline('sdxl', dtype='bf16'); info['build_s'] = round(time.time() - t0, 1)
        info['prompt_source'] = str(getattr(pipe.prompt.config, 'source', ''))
        assert pipe.prompt.guidable                                   # real prompt and negative prompt differ
        lr = _pm1(1, 3, 32, 32)
        half = torch.zeros(1, 1, 128, 128); half[..., :64] = 1          # left half texture-rich, right half sparse
        kw = dict(num_inference_steps=2, t_range=(0, 1000), seed=0, ta_sampling=True, mask=half, refine=False)
        t0 = time.time(); out = pipe(lr, guidance_scale=5.0, **kw); info['cfg_2_steps_s'] = round(time.time() - t0, 1)
        assert out.images.shape == (1, 3, 128, 128) and torch.isfinite(out.images).all()
        held = [float(1 - m.float().mean()) for m in out.update_masks]     # TA-sampling: latents held on sparse positions
        info['held_fraction_per_step'] = held
        assert held == [0.5, 0.0]      # step 0 (in the window, skip parity) holds the sparse half; step 1 updates all
        plain = pipe(lr, guidance_scale=1.0, **kw)
        info['cfg_vs_plain_mean_abs'] = float((out.images.float() - plain.images.float()).abs().mean())
        assert info['cfg_vs_plain_mean_abs'] > 0                      # guidance acts at full size


def test_texadiff_sd21_train_step(weights):
    "One TexADiff training step (MiniControlNet + selectively unfrozen UNet blocks, TADL) on SD 2.1-base, fp32."
    from rsworkbench.texadiff.pipeline import build_pipeline
    from rsworkbench.texadiff.train import train_texadiff
    weights('sd21-base')
    with record('texadiff_sd21_train_step') as info:
        with warnings.catch_warnings():
            warnings.filterwarnings('ignore', message='build_pipeline: the RTDM predictor is untrained')
            pipe = build_pipeline('sd21-base')
        before = {k: v.detach().clone() for k, v in pipe.control.named_parameters()}
        data = [dict(hr=_pm1(3, 64, 64, seed=1), lr=_pm1(3, 16, 16, seed=2))]
        t0 = time.time()
        hist = train_texadiff(pipe, data, max_steps=1, batch=1, perceptual='gradient', device='cpu', progress=False)
        info['step_s'] = round(time.time() - t0, 1)
        assert len(hist['loss']) == 1 and torch.isfinite(torch.tensor(hist['loss'])).all()
        assert _changed(before, pipe.control) > 0                    # the control was trained


# ---- (d) SlimDiffSR ----

def test_slim_teacher_and_student_sd_turbo(weights):
    "SlimDiffSR on sd-turbo: teacher LoRA step with the ᾱ* predictor, its inference, the pruned student and one distillation step."
    from rsworkbench.slim.train import build_teacher, train_teacher, build_student, train_student
    from rsworkbench.models.backbones import count_params
    weights('sd-turbo', 'taesd')
    data = [dict(hr=_pm1(3, 64, 64, seed=1), lr=_pm1(3, 16, 16, seed=2))]
    common = dict(batch=1, lambda_lpips=0, discriminator='conv', device='cpu', progress=False)
    with record('slim_teacher_and_student_sd_turbo') as info:
        teacher = build_teacher('sd-turbo')
        t0 = time.time()
        hist = train_teacher(teacher, data, max_steps=2, estimator_steps=1, alpha_mode='predictor', **common)
        info['teacher_2_steps_s'] = round(time.time() - t0, 1)
        assert hist['alpha_mode'] == 'predictor' and len(hist['loss']) == 2
        assert all(torch.isfinite(torch.tensor(hist[k])).all() for k in ('loss',))
        assert teacher.config.alpha_mode == 'predictor' and teacher.predictor is not None
        t0 = time.time()
        with torch.no_grad(): sr = teacher(data[0]['lr'][None]).images
        info['teacher_infer_s'] = round(time.time() - t0, 1)
        assert sr.shape == (1, 3, 64, 64) and torch.isfinite(sr).all()
        student = build_student('sd-turbo')
        info['student_params'] = count_params(student.net)
        assert info['student_params'] < 865_910_724 / 2               # pruned
        before = {k: v.detach().clone() for k, v in student.net.named_parameters()}
        t0 = time.time()
        sh = train_student(student, teacher, data, max_steps=1, distill='mse+mmd', teacher_predictor=teacher.predictor, **common)
        info['student_step_s'] = round(time.time() - t0, 1)
        assert len(sh['loss']) == 1 and sh['mmd'] and torch.isfinite(torch.tensor(sh['mmd'])).all()
        assert _changed(before, student.net) > 0
        with torch.no_grad(): assert student(data[0]['lr'][None]).images.shape == (1, 3, 64, 64)


# ---- (e) SGDM ----

def test_sgdm_sd21_stage1_and_inference(weights, tmp_path):
    "SGDM on SD 2.1-base: one stage-1 training step (x16, 4x4 -> 64x64) and one inference step."
    from rsworkbench.sgdm.pipeline import build_sgdm
    from rsworkbench.sgdm.train import train_stage1
    weights('sd21-base')
    with record('sgdm_sd21_stage1_and_inference') as info:
        pipe = build_sgdm('sd21-base')
        assert pipe.conditioning == 'text-encoder'                    # the class prompt goes through the OpenCLIP-H text encoder
        before = {k: v.detach().clone() for k, v in pipe.adapter.named_parameters()}
        data = [dict(lr=_pm1(3, 4, 4, seed=2), hr=_pm1(3, 64, 64, seed=1))]
        t0 = time.time()
        r = train_stage1(pipe, data, tmp_path/'run', max_steps=1, scale=16, ckpt_every=10, progress=False)
        info['stage1_step_s'] = round(time.time() - t0, 1)   # includes saving checkpoint/ and last/
        assert r['step'] == [1] and torch.isfinite(torch.tensor(r['loss'])).all()
        assert _changed(before, pipe.adapter) > 0
        t0 = time.time()
        with torch.no_grad(): out = pipe(_pm1(1, 3, 4, 4, seed=3), scale=16, num_inference_steps=1)
        info['infer_1_step_s'] = round(time.time() - t0, 1)
        assert out.images.shape == (1, 3, 64, 64) and torch.isfinite(out.images).all()
        assert getattr(out, 'conditioning', 'text-encoder') == 'text-encoder'
