"""Score SlimDiffSR teachers (and students) on template 83's own held-out batches and on training crops, so that a teacher can be set
beside the students it would distil (83 with data='clean', degradation='bicubic', patch=64, batch=8, n_val=4, seed 0: the same 32 crops as its rows).

Numbers per teacher:
- `pipeline`: the inference path (`SlimTeacherPipeline` with the ᾱ* rule the checkpoint was trained with, `rule`: for 'predictor' its
  predictor on the estimator's mean and variance; no HR needed), with `pipeline_worst`, the lowest per-crop gain over bicubic (dB);
- `pipeline_variance` (teachers trained with another rule): the same path with the authors' variance rule ᾱ* = 1/(1 + z_var), which the
  pipeline used for every teacher before it recorded the trained rule;
- `distill`: the path a student is distilled from (`train_student` runs the teacher with the HR: ᾱ* from the predictor on the HR latent,
  as during the teacher's training; the paper uses the predictor only while the teacher is built and distilled).
And the autoencoder's ceiling: PSNR-Y of decode(encode(HR)), which no teacher on that autoencoder can exceed by much.
Each is given on the held-out crops and on 32 training crops (the first 4 batches of 8 of the training split: what a student is
distilled on), with bicubic beside them. One JSON line per teacher.

Usage: .venv/bin/python scripts/teacher_eval.py DIR [DIR ...]   (save_teacher folders: <run>/checkpoint or a shipped asset; a student
folder, SlimDiffSRPipeline, is scored too, through its pipeline only, to set it beside the teachers)
"""
import sys, json
from pathlib import Path
import torch
from rsworkbench.core import from_pm1
from rsworkbench.data.degrade import bicubic_up
from rsworkbench.metrics import psnr_y
from rsworkbench.slim.teacher import encode_latents, decode_latents
from rsworkbench.slim.pipeline import SlimDiffSRPipeline
from rsworkbench.slim.train import slim_data, batch_at, evaluate_slim, load_teacher, _teacher_view

def crop_psnr(pairs):
    q = lambda t: from_pm1(t.float().clamp(-1, 1)).double()
    return torch.cat([psnr_y(q(a), q(b)).flatten() for a, b in pairs])

def mean_psnr(pairs): return float(crop_psnr(pairs).mean())

def pipe_scores(pipe, bs, **kw):
    "Mean PSNR-Y of the pipeline and its lowest per-crop gain over bicubic."
    p = crop_psnr([(pipe(b['lr'], **kw).images, b['hr']) for b in bs]); c = crop_psnr([(bicubic_up(b['lr'], 4), b['hr']) for b in bs])
    return float(p.mean()), float((p - c).min())

if __name__ == '__main__':
    if len(sys.argv) < 2: sys.exit(__doc__)
    torch.set_num_threads(1)
    dd = slim_data('clean', 64, 'bicubic', seed=0)
    sets = {'held_out': [batch_at(dd['val'], i, 8) for i in range(4)], 'train': [batch_at(dd['train'], i, 8) for i in range(4)]}
    for d in sys.argv[1:]:
        idx = Path(d)/'model_index.json'   # missing: load_teacher says what to pass
        student = idx.exists() and json.loads(idx.read_text()).get('_class_name') == 'SlimDiffSRPipeline'
        pipe, pred = (SlimDiffSRPipeline.from_pretrained(d), None) if student else load_teacher(d)
        r = dict(student=d) if student else dict(teacher=d, rule=pipe.config.alpha_mode)
        with torch.no_grad():
            tv = _teacher_view(pipe, pred, 'predictor') if pred is not None else None
            for name, bs in sets.items():
                ev = evaluate_slim(pipe, bs)
                r[name] = dict(bicubic=ev['psnr_y_bicubic'], pipeline=ev['psnr_y'], pipeline_worst=pipe_scores(pipe, bs)[1])
                if not student and pipe.config.alpha_mode != 'variance':
                    r[name]['pipeline_variance'], r[name]['pipeline_variance_worst'] = pipe_scores(pipe, bs, alpha_rule='variance')
                if not student: r[name]['vae_ceiling'] = mean_psnr([(decode_latents(pipe.vae, encode_latents(pipe.vae, b['hr'])), b['hr']) for b in bs])
                if tv is not None: r[name]['distill'] = mean_psnr([(tv(bicubic_up(b['lr'], 4), b['hr']).images, b['hr']) for b in bs])
        print(json.dumps({k: ({a: round(b, 3) for a, b in v.items()} if isinstance(v, dict) else v) for k, v in r.items()}))
