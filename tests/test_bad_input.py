"The bad-input corpus (issue #30 item 9): every case of `rsworkbench.refusals.CASES` through `rsw sr`, `rsw scene` and `rsw evaluate` gives its exit status and a message naming the problem, and no existing file changes; a few cases through the real `rsw` executable."
import sys
from pathlib import Path
import pytest
from rsworkbench.refusals import CASES, run_case, check_case, refusal_table

@pytest.fixture(autouse=True)
def one_thread(one_thread): yield

@pytest.mark.parametrize('case', CASES, ids=[f'{c.cmd}-{c.id}'.replace(' ', '_') for c in CASES])
def test_case_in_process(case, tmp_path):
    check_case(case, run_case(case, tmp_path))

SUBPROCESS = [('sr', 'output = input'), ('sr', 'YAML tag in -O'), ('scene', 'truncated GeoTIFF'), ('evaluate', 'SR 1 px larger than HR')]

@pytest.mark.slow
@pytest.mark.parametrize('key', SUBPROCESS, ids=lambda k: f'{k[0]}-{k[1]}'.replace(' ', '_'))
def test_case_through_rsw_executable(key, tmp_path):
    "The real console script: same exit status and message, no stack trace, nothing changed."
    case = next(c for c in CASES if (c.cmd, c.id) == key)
    r = run_case(case, tmp_path, exe=Path(sys.executable).parent/'rsw')
    check_case(case, r)
    assert 'rsw: error:' in r['err'] and 'Traceback' not in r['err']

def test_table_for_the_docs():
    "The docs page's table comes from the same cases: one row each, with outcome and reason."
    few = [c for c in CASES if c.id in ('output = input', 'matching pair')]
    t = refusal_table(few)
    assert list(t.columns) == ['command', 'case', 'outcome', 'message', 'why'] and len(t) == len(few)
    assert set(t.outcome) == {'refused (exit 2)', 'done (exit 0)'}
