"""rsworkbench.results: the results page's tables from run folders, the manifest, `rsw results` and `rsw ship`.

The run folders here are synthetic, laid out as the templates write them (template 80: metrics.json with params,
n_pairs and per_pair{row: {metric: values}, names}; template 83: per_seed.csv and variants/<v>/seed<s>/history.json),
with numbers chosen so that each statistic can be computed by hand. Where real run folders are on this machine
(outputs/slim_distill_fix, outputs/compare_mmdfix, outputs/compare_teacher_rule), the committed CSVs are rebuilt from
them and compared byte for byte."""
import contextlib, filecmp, io, json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from scipy import stats
from rsworkbench import results
from rsworkbench.cli import main
from rsworkbench.core import repo_root

ROOT = repo_root()
METRICS = ['psnr', 'ssim', 'fsim', 'vsi', 'gmsd']

def compare_run(d, rows, names, **params):
    "A template-80 run folder (the keys the builders read from a real metrics.json)."
    d = Path(d); d.mkdir(parents=True, exist_ok=True)
    (d/'metrics.json').write_text(json.dumps(dict(params=params, n_pairs=len(names), per_pair=dict(rows, names=names))))
    return d

def slim_run(d, seed, gains, histories=None):
    "A template-83 run folder: per_seed.csv, and optionally variants/<v>/seed<s>/history.json (training L1)."
    d = Path(d); d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([dict(variant=v, seed=seed, psnr_y=30.877 + g, ssim_y=0.65, gain_db=g, psnr_y_bicubic=30.877,
                       steps=1000, seconds_per_tile=0.02, params_m=0.548662) for v, g in gains.items()]
                 ).to_csv(d/'per_seed.csv', index=False)
    for v, l1 in (histories or {}).items():
        h = d/'variants'/v/f'seed{seed}'; h.mkdir(parents=True)
        (h/'history.json').write_text(json.dumps(dict(step=list(range(len(l1))), l1=list(l1))))
    return d

# --- tables: numbers by hand ------------------------------------------------------------------------------------

def test_data_table_gain_is_per_image_paired(tmp_path):
    "all − clean is averaged per image first (tiles of one image count once), with a Student-t interval over images."
    clean = [30.0, 31.0, 29.0, 28.0, 27.0]
    full = [31.2, 32.1, 30.0, 28.1, 27.2]          # pairs: image a has three tiles, b and c one each
    names = ['a@0,0', 'a@0,192', 'a@192,0', 'b', 'c']
    rows = {'bicubic': {m: [29.0] * 5 for m in METRICS}}
    rows['residual-cnn:clean-s0'] = {m: clean for m in METRICS}
    rows['residual-cnn:all-s0'] = {m: full for m in METRICS}
    run = compare_run(tmp_path/'cmp', rows, names, tiles=True)
    r = results.data_table([run], tmp_path/'data', tmp_path/'img')
    per_image = np.array([np.mean([1.2, 1.1, 1.0]), 0.1, 0.2])   # a, b, c
    assert abs(np.mean(np.subtract(full, clean)) - per_image.mean()) > 0.05   # pooling over pairs would differ
    row = r['sr_data_paired'].query("metric == 'psnr'").iloc[0]
    h = stats.t.ppf(0.975, 2) * per_image.std(ddof=1) / np.sqrt(3)
    assert (row['eval'], row['n']) == ('tiles', 3)
    assert row['gain'] == pytest.approx(per_image.mean()) and row['ci95_hi'] == pytest.approx(per_image.mean() + h)
    by_group = r['sr_data_by_group'].set_index('group').all_minus_clean_db
    assert by_group['a'] == pytest.approx(per_image[0]) and by_group['c'] == pytest.approx(0.2)
    written = pd.read_csv(tmp_path/'data'/'sr_data_paired.csv')
    assert written.gain[0] == round(per_image.mean(), 4)            # written rounded to 4 decimals, as before
    assert not (tmp_path/'img'/'sr_data_by_image.png').exists()      # per-image figure: centre-crop runs only

def test_distill_table_pools_seeds_and_draws_figure_only_with_the_undistilled_row(tmp_path):
    "Paired MSE − none per seed on the same pairs, pooled over the seeds' pairs; the figure needs variants/distill_none."
    l1 = np.linspace(0.2, 0.1, 150)
    hist = {'distill_none': l1, 'distill_mse': l1 + 0.01, 'full': l1 - 0.01}
    slims = [slim_run(tmp_path/f'slim{s}', s, dict(distill_none=0.17, distill_mse=0.10, full=0.09), hist)
             for s in (0, 1)]
    bic = [28.0, 29.0, 30.0]
    rows = {'bicubic': {m: bic for m in METRICS}}
    none = {0: [28.5, 29.4, 30.3], 1: [28.6, 29.2, 30.5]}
    mse = {0: [28.4, 29.5, 30.1], 1: [28.5, 29.3, 30.2]}
    for s in (0, 1):
        rows[f'slim-student:none{s}'] = {m: none[s] for m in METRICS}
        rows[f'slim-student:mse{s}'] = {m: mse[s] for m in METRICS}
    cmp = compare_run(tmp_path/'cmp', rows, ['x', 'y', 'z'], eval_set='research')
    teacher = compare_run(tmp_path/'teacher', {'bicubic': {'psnr': bic}, 'slim-teacher': {'psnr': [28.1, 29.1, 30.4]}},
                          ['x', 'y', 'z'], eval_set='research')
    r = results.distill_table(slims, [cmp], [teacher], name='t', out=tmp_path/'data', images=tmp_path/'img')
    d = np.subtract(mse[0] + mse[1], none[0] + none[1])
    x = r['t_paired'].query("row == 'mse' and against == 'none' and metric == 'psnr'").iloc[0]
    assert x['mean'] == pytest.approx(d.mean()) and x['std'] == pytest.approx(d.std(ddof=1))
    assert x.better == pytest.approx(np.mean(d > 0)) and x.n == 6
    per_seed = [np.mean(np.subtract(mse[s], none[s])) for s in (0, 1)]
    assert x.per_seed == ' '.join(f'{v:+.4f}' for v in per_seed)
    assert x.seeds_agree == sum(np.sign(v) == np.sign(d.mean()) for v in per_seed)
    w = r['t_wide'].set_index(['row', 'metric'])
    assert w.loc[('none', 'psnr'), 'gain_vs_bicubic'] == pytest.approx(np.mean([np.mean(np.subtract(none[s], bic))
                                                                                for s in (0, 1)]))
    assert w.loc[('teacher', 'psnr'), 'gain_vs_bicubic'] == pytest.approx(0.2)
    assert (tmp_path/'img'/'t_cpu.png').exists()
    r2 = results.distill_table([slim_run(tmp_path/'rerun', 0, dict(full=0.1))], [cmp], name='u', out=tmp_path/'data',
                               images=tmp_path/'img')
    assert list(r2['u'].index) == ['mmd'] and not (tmp_path/'img'/'u_cpu.png').exists()

def test_steps_table_series_and_compare(tmp_path):
    "Runs differing only in max_steps/seed form one series; the compare run's gains are over bicubic and `versus`."
    def train_run(d, steps, gain, seed, lr=2e-4):
        d.mkdir(parents=True)
        p = dict(arch='residual-cnn', data='all', lr=lr, max_steps=steps, max_minutes=150, seed=seed)
        (d/'metrics.json').write_text(json.dumps(dict(params=p, minutes=steps / 60, n_train=79, n_val=16)))
        (d/'history.json').write_text(json.dumps(dict(val=[dict(step=steps, gain_db=gain)])))
        return d
    runs = [train_run(tmp_path/'a', 1800, 1.0, 0), train_run(tmp_path/'b', 3600, 1.1, 0),
            train_run(tmp_path/'c', 3600, 1.12, 1), train_run(tmp_path/'d', 1800, 0.5, 0, lr=1e-3)]
    rows = {'bicubic': {m: [29.0, 30.0] for m in ('psnr', 'fsim', 'vsi')},
            'residual-cnn:1800-s0': {m: [30.0, 31.0] for m in ('psnr', 'fsim', 'vsi')},
            'residual-cnn:3600-s0': {m: [30.2, 31.1] for m in ('psnr', 'fsim', 'vsi')}}
    cmp = compare_run(tmp_path/'cmp', rows, ['x', 'y'])
    m = json.loads((cmp/'metrics.json').read_text()); m['versus'] = 'residual-cnn:1800-s0'
    (cmp/'metrics.json').write_text(json.dumps(m))
    r = results.steps_table(runs, [cmp], tmp_path/'data', tmp_path/'img')
    assert r['sr_steps'].series.nunique() == 2 and len(r['fits']) == 1
    b = np.polyfit(np.log2([1800, 3600, 3600]), [1.0, 1.1, 1.12], 1)[0]
    assert r['fits'].b[0] == pytest.approx(b)
    ev = r['sr_steps_eval'].set_index(['row', 'minus', 'metric'])
    assert ev.loc[('residual-cnn:3600-s0', 'residual-cnn:1800-s0', 'psnr'), 'gain'] == pytest.approx(0.15)
    assert ev.loc[('residual-cnn:3600-s0', 'bicubic', 'psnr'), 'gain'] == pytest.approx(1.15)

# --- the manifest and regenerate --------------------------------------------------------------------------------

def _manifest(tmp_path, entries):
    (tmp_path/'manifest.json').write_text(json.dumps(dict(entries=entries)))
    return tmp_path/'manifest.json'

def test_regenerate_runs_what_is_here_and_names_what_is_not(tmp_path):
    "One line per entry; a missing run folder is named, nothing of that entry is written; check mode writes nothing."
    root = tmp_path/'root'
    rows = {'bicubic': {m: [29.0, 30.0] for m in METRICS},
            'cnn:clean-s0': {m: [29.5, 30.0] for m in METRICS}, 'cnn:all-s0': {m: [30.0, 30.2] for m in METRICS}}
    compare_run(root/'outputs'/'cmp'/'r1', rows, ['x', 'y'])
    man = _manifest(tmp_path, [
        dict(name='here', function='data_table', args=dict(runs=['outputs/cmp/r1']), paths=['runs'],
             writes=['results_data/sr_data_gains.csv']),
        dict(name='gone', function='data_table', args=dict(runs=['outputs/cmp/r1', 'outputs/cmp/r2']), paths=['runs'],
             writes=['results_data/sr_data_gains.csv']),
        dict(name='by_hand', function=None, writes=['images/x.png'], note='copied by hand')])
    lines = []
    st = results.regenerate(man, check=True, out=tmp_path/'data', images=tmp_path/'img', root=root, say=lines.append)
    assert list(st.status) == ['would run', 'missing', 'no source'] and not (tmp_path/'data').exists()
    assert lines[1] == '  missing  gone: not on this machine: outputs/cmp/r2'
    st = results.regenerate(man, out=tmp_path/'data', images=tmp_path/'img', root=root, say=None)
    assert list(st.status) == ['ran', 'missing', 'no source']
    gains = pd.read_csv(tmp_path/'data'/'sr_data_paired.csv').query("metric == 'psnr'")
    assert gains.gain.iloc[0] == pytest.approx(0.35)    # (0.5 + 0.2) / 2
    assert list(results.regenerate(man, only=['gone'], check=True, root=root, say=None).name) == ['gone']

def test_regenerate_reports_a_failing_builder_in_one_line_and_rsw_exits_2(tmp_path, capsys):
    "A run folder that is there but is not what the builder reads: 'failed' with the reason, not a traceback."
    run = tmp_path/'outputs'/'cmp'/'r1'; run.mkdir(parents=True)   # no metrics.json
    man = _manifest(tmp_path, [dict(name='broken', function='data_table', args=dict(runs=[str(run)]),
                                    paths=['runs'], writes=[])])   # an absolute path stays as it is
    st = results.regenerate(man, say=None)
    assert st.status[0] == 'failed' and 'not on this machine' in st.detail[0] and 'metrics.json' in st.detail[0]
    assert main(['results', '--manifest', str(man), '--out', str(tmp_path/'d')]) == 2
    out, err = capsys.readouterr()
    assert 'Traceback' not in out + err and 'rsw: error:' in err

def test_manifest_rejects_unknown_functions_and_paths(tmp_path):
    with pytest.raises(ValueError, match="unknown function 'plot_everything'"):
        results.load_manifest(_manifest(tmp_path, [dict(name='x', function='plot_everything', writes=[])]))
    with pytest.raises(ValueError, match="paths names \\['run'\\]"):
        results.load_manifest(_manifest(tmp_path, [dict(name='x', function='data_table', args={}, paths=['run'])]))

def test_committed_manifest_covers_every_committed_table():
    "Every CSV/JSON in nbs/results_data is written by a manifest entry, and every entry names a builder of this module."
    ents = results.load_manifest()
    writes = {w for e in ents for w in e['writes']}
    have = {f'results_data/{p.name}' for p in (ROOT/'nbs'/'results_data').iterdir()
            if p.suffix in ('.csv', '.json') and p.name != 'manifest.json'}
    assert have <= writes, sorted(have - writes)
    assert {e['function'] for e in ents if e['function']} <= set(results.BUILDERS)

def test_rsw_results_check_runs_without_torch():
    "`rsw results --check` lists every entry, one line each, exits 0 and loads no torch (the builders import it)."
    code = ("import sys, contextlib, io\nfrom rsworkbench.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf): rc = main(['results', '--check'])\n"
            "print(rc, 'torch' in sys.modules); print(buf.getvalue(), end='')")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0 and 'Traceback' not in r.stderr, r.stderr
    head, *lines = r.stdout.splitlines()
    assert head == '0 False'
    n = len(results.load_manifest())
    assert len(lines) == n + 1 and lines[-1].endswith(f'(of {n} entries; \'missing\': run folders not here)')
    assert all(l.split()[0] in ('missing', 'would', 'no') for l in lines[:-1])

# --- rsw ship ---------------------------------------------------------------------------------------------------

def test_rsw_ship_residual_cnn_candidate(tmp_path, capsys):
    "`rsw ship residual-cnn CKPT --dest D`: fp16 weights that load back, the README of D kept, sampler options refused."
    import torch
    from safetensors.torch import load_file
    from rsworkbench.models.train import ResidualSRNet
    net = ResidualSRNet(scale=4, n_feats=8, n_blocks=1)
    torch.nn.init.normal_(net.tail.weight); net.save_pretrained(tmp_path/'ckpt')
    (tmp_path/'dest').mkdir(); (tmp_path/'dest'/'README.md').write_text('model card')
    assert main(['ship', 'residual-cnn', str(tmp_path/'ckpt'), '--dest', str(tmp_path/'dest')]) == 0
    assert 'MB' in capsys.readouterr().out
    w = load_file(str(next((tmp_path/'dest').glob('*.safetensors'))))
    assert {v.dtype for v in w.values()} == {torch.float16}
    back = ResidualSRNet.from_pretrained(tmp_path/'dest')
    assert torch.equal(back.tail.weight.half(), net.tail.weight.half())
    assert (tmp_path/'dest'/'README.md').read_text() == 'model card'
    assert main(['ship', 'residual-cnn', str(tmp_path/'ckpt'), '--steps', '2', '--dest', str(tmp_path/'x')]) == 2
    assert 'takes no sampler options' in capsys.readouterr().err and not (tmp_path/'x').exists()

# --- the committed tables from the real run folders on this machine -----------------------------------------------

REAL = dict(slim=['outputs/slim_distill_fix/a51403e03d', 'outputs/slim_distill_fix/000c734285'],
            compare=['outputs/compare_mmdfix/9fcf432c60', 'outputs/compare_mmdfix/dea5eb784e'],
            teacher=['outputs/compare_teacher_rule/7df22da8cd', 'outputs/compare_teacher_rule/ef473c9cb2'])

@pytest.mark.skipif(not all((ROOT/p).exists() for ps in REAL.values() for p in ps), reason='run folders not here')
def test_real_runs_rebuild_the_committed_mmdfix_tables(tmp_path):
    "The manifest's slim_distill_mmdfix entries rebuild the committed CSVs byte for byte from outputs/."
    st = results.regenerate(only=['slim_distill_mmdfix', 'slim_distill_mmdfix_vs_old'], out=tmp_path, images=tmp_path,
                            say=None)
    assert list(st.status) == ['ran', 'ran'], st.detail.tolist()
    names = ['slim_distill_mmdfix', 'slim_distill_mmdfix_per_seed', 'slim_distill_mmdfix_wide',
             'slim_distill_mmdfix_paired', 'slim_distill_mmdfix_vs_old']
    for n in names:
        assert filecmp.cmp(tmp_path/f'{n}.csv', ROOT/'nbs'/'results_data'/f'{n}.csv', shallow=False), n
