"Notebook hygiene: papermill tags survive nbdev_clean, templates are well-formed, every exported module imports."
import ast, copy, configparser, importlib, json, pkgutil, shutil, subprocess, sys
from pathlib import Path
import pytest
from nbdev.clean import clean_nb
import rsworkbench

ROOT = Path(__file__).resolve().parents[1]
EXP = ROOT/'nbs'/'experiments'
TEMPLATES = sorted(EXP.glob('*.ipynb'))

def _settings():
    c = configparser.ConfigParser(delimiters=['=']); c.read(ROOT/'settings.ini')
    return c['DEFAULT']

def _nb(p): return json.loads(Path(p).read_text())
def _src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']
def _tagged(nb, tag='parameters'): return [c for c in nb['cells'] if tag in c.get('metadata', {}).get('tags', [])]

def test_templates_exist():
    assert TEMPLATES, f'no templates in {EXP}'
    assert (EXP/'.notest').exists(), 'nbdev_test must skip the templates (nbs/experiments/.notest)'

def test_parameters_tag_survives_clean_nb_with_project_config():
    s = _settings()
    assert 'tags' in s['allowed_cell_metadata_keys'].split()
    nb = _nb(TEMPLATES[0])
    nb['cells'][1].setdefault('metadata', {})['tags'] = ['parameters']
    nb['cells'][1]['metadata']['collapsed'] = True   # noise that clean must strip
    keep = copy.deepcopy(nb)
    clean_nb(keep, allowed_metadata_keys=s['allowed_metadata_keys'].split(),
             allowed_cell_metadata_keys=s['allowed_cell_metadata_keys'].split(), clean_ids=True)
    assert len(_tagged(keep)) == 1 and 'collapsed' not in keep['cells'][1]['metadata']
    # control: without the setting, clean strips the tag (what would silently break papermill)
    lose = copy.deepcopy(nb); clean_nb(lose)
    assert _tagged(lose) == []

def test_nbdev_clean_cli_keeps_parameters_tag(tmp_path):
    shutil.copy(ROOT/'settings.ini', tmp_path/'settings.ini')
    (tmp_path/'nbs').mkdir()
    dst = tmp_path/'nbs'/'t.ipynb'; shutil.copy(TEMPLATES[0], dst)
    r = subprocess.run([str(Path(sys.executable).parent/'nbdev_clean'), '--fname', str(dst)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert len(_tagged(_nb(dst))) == 1

@pytest.mark.parametrize('tpl', TEMPLATES, ids=lambda p: p.name)
def test_template_is_clean(tpl):
    s, nb = _settings(), _nb(tpl)
    cleaned = copy.deepcopy(nb)
    clean_nb(cleaned, allowed_metadata_keys=s['allowed_metadata_keys'].split(),
             allowed_cell_metadata_keys=s['allowed_cell_metadata_keys'].split(), clean_ids=True)
    assert cleaned == nb, f'run nbdev_clean --fname {tpl.relative_to(ROOT)}'

@pytest.mark.parametrize('tpl', TEMPLATES, ids=lambda p: p.name)
def test_template_parameters_cell(tpl):
    nb = _nb(tpl)
    cells = _tagged(nb)
    assert len(cells) == 1, f'{tpl.name}: {len(cells)} parameters cells'
    names = []
    for st in ast.parse(_src(cells[0])).body:
        assert isinstance(st, (ast.Assign, ast.AnnAssign)), f'{tpl.name}: line {st.lineno} is not an assignment'
        tgt = st.targets[0] if isinstance(st, ast.Assign) else st.target
        assert isinstance(tgt, ast.Name) and (isinstance(st, ast.AnnAssign) or len(st.targets) == 1)
        ast.literal_eval(st.value)    # raises on anything derived
        names.append(tgt.id)
    assert 'run_dir' in names, f'{tpl.name}: parameters cell needs run_dir = ""'
    assert len(names) == len(set(names))

@pytest.mark.parametrize('tpl', TEMPLATES, ids=lambda p: p.name)
def test_template_not_exported_and_skipped(tpl):
    nb = _nb(tpl)
    for c in nb['cells']:
        if c['cell_type'] != 'code': continue
        for line in _src(c).splitlines():
            l = line.replace(' ', '')
            assert not (l.startswith('#|export') or l.startswith('#|exports') or l.startswith('#|default_exp')), (tpl.name, line)
    head = _src(nb['cells'][0])
    assert 'skip_exec: true' in head, f'{tpl.name}: first cell needs frontmatter skip_exec: true'
    assert 'save_metrics(run_dir' in ''.join(_src(c) for c in nb['cells'])

def test_every_module_imports():
    mods = [m.name for m in pkgutil.walk_packages(rsworkbench.__path__, 'rsworkbench.')]
    assert 'rsworkbench.experiments' in mods and 'rsworkbench.core' in mods
    failed = {}
    for name in mods:
        try: importlib.import_module(name)
        except Exception as e: failed[name] = f'{type(e).__name__}: {e}'
    assert not failed, failed

@pytest.mark.parametrize('tpl', TEMPLATES, ids=lambda p: p.name)
def test_papermill_parses_every_parameter(tpl):
    "papermill's own parser sees every parameter (a line it cannot parse still runs, but `inspect_notebook` and its warnings lose it)."
    import papermill as pm
    from rsworkbench.experiments import template_params
    assert set(pm.inspect_notebook(str(tpl))) == set(template_params(tpl))

# --- no unpickling of user-reachable files (issue #30 item 4) ---
_UNSAFE_LOADS = {('pickle', 'load'), ('pickle', 'loads'), ('cPickle', 'load'), ('dill', 'load'), ('joblib', 'load'), ('cloudpickle', 'load')}

def _code_sources():
    "(label, python source) of every package module, script, test and notebook code cell."
    for d in ('rsworkbench', 'scripts', 'tests'):
        for p in sorted((ROOT/d).rglob('*.py')): yield str(p.relative_to(ROOT)), p.read_text()
    for p in sorted((ROOT/'nbs').rglob('*.ipynb')):
        if '.ipynb_checkpoints' in p.parts: continue
        for k, c in enumerate(_nb(p)['cells']):
            if c['cell_type'] == 'code':
                yield f'{p.relative_to(ROOT)} cell {k}', '\n'.join('' if l.lstrip().startswith(('%', '!')) else l for l in _src(c).splitlines())

def unsafe_loads(src:str) -> list[str]:
    "Calls in `src` that can run code from a file: torch.load without weights_only=True, pickle-family loads, np.load(allow_pickle=True)."
    try: tree = ast.parse(src)
    except SyntaxError: return []
    bad = []
    for n in ast.walk(tree):
        if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)): continue
        mod, fn, kw = n.func.value.id, n.func.attr, {k.arg: k.value for k in n.keywords}
        const = lambda name: isinstance(kw.get(name), ast.Constant) and kw[name].value
        if (mod, fn) == ('torch', 'load') and const('weights_only') is not True: bad.append(f'line {n.lineno}: torch.load without weights_only=True')
        elif (mod, fn) in _UNSAFE_LOADS: bad.append(f'line {n.lineno}: {mod}.{fn}')
        elif (mod, fn) == ('np', 'load') and const('allow_pickle') is True: bad.append(f'line {n.lineno}: np.load(allow_pickle=True)')
    return bad

def test_unsafe_loads_detector():
    "The detector itself: what it must flag and what it must let through."
    assert unsafe_loads("torch.load(p)") and unsafe_loads("torch.load(p, weights_only=False)") and unsafe_loads("import pickle\npickle.load(f)")
    assert unsafe_loads("np.load(p, allow_pickle=True)") and unsafe_loads("st = torch.load(out/'state.pt', weights_only=False)")
    assert not unsafe_loads("torch.load(p, map_location='cpu', weights_only=True)") and not unsafe_loads("np.load(p)")

def test_no_unsafe_loads_anywhere():
    "No torch.load without weights_only=True and no pickle.load anywhere in the package, scripts, tests or notebooks (a planted run folder must not run code)."
    found = {label: b for label, src in _code_sources() if (b := unsafe_loads(src))}
    assert not found, found
