#!/usr/bin/env python
"""Regenerate environment.yml from settings.ini (requirements + dev_requirements); tests/test_env.py checks they agree."""
import configparser
from pathlib import Path
root = Path(__file__).resolve().parent.parent
cfg = configparser.ConfigParser(); cfg.read(root/'settings.ini')
reqs = cfg['DEFAULT']['requirements'].split() + cfg['DEFAULT']['dev_requirements'].split()
head = """# conda environment for rsworkbench users: `conda env create -f environment.yml`, then `pip install -e . --no-deps`.
# The pip section mirrors settings.ini (requirements + dev_requirements); tests/test_env.py keeps them equal.
# Regenerate with `python scripts/sync_env.py` after changing settings.ini.
name: rsworkbench
channels:
  - conda-forge
dependencies:
  - python=3.11
  - pip
  - pip:
"""
(root/'environment.yml').write_text(head + ''.join(f'    - "{r}"\n' for r in reqs))
