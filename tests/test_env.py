"The conda environment mirrors settings.ini; the two commands' scripts exist and CI calls the README's test command."
import configparser, shlex, re
from pathlib import Path
import yaml

ROOT = Path(__file__).resolve().parents[1]

def _settings():
    c = configparser.ConfigParser(delimiters=['=']); c.read(ROOT/'settings.ini')
    return c['DEFAULT']

def test_environment_yml_mirrors_settings():
    s = _settings()
    want = shlex.split(s['requirements']) + shlex.split(s['dev_requirements'])
    env = yaml.safe_load((ROOT/'environment.yml').read_text())
    assert 'python=3.11' in env['dependencies']
    pip = next(d['pip'] for d in env['dependencies'] if isinstance(d, dict) and 'pip' in d)
    assert sorted(pip) == sorted(want), set(pip) ^ set(want)

def test_pins_from_style_guide():
    s = _settings()
    req = shlex.split(s['requirements']) + shlex.split(s['dev_requirements'])
    for pin in ['nbdev==2.4.14', 'fastcore==1.14.5', 'execnb==0.1.18', 'ghapi==1.1.1', 'papermill==2.7.0',
                'torch==2.14.1', 'torchvision==0.29.1', 'setuptools<81']:
        assert pin in req, pin
    assert s['allowed_cell_metadata_keys'].strip() == 'tags'
    assert s['recursive'] == 'True' and s['tst_flags'] == 'slow gpu' and s['readme_nb'] == 'index.ipynb'

def test_ci_runs_readme_test_command():
    readme = (ROOT/'README.md').read_text()
    ci = (ROOT/'.ci'/'run').read_text()
    cmds = re.findall(r'```(?:bash|sh)\n(.*?)```', readme, flags=re.S)
    test_cmd = next(c.strip() for c in cmds if 'scripts/test.sh' in c)
    assert 'scripts/test.sh' in ci and test_cmd.endswith('bash scripts/test.sh')
    assert any('rsw demo' in c for c in cmds)
