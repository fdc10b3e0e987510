"""JupyterLab check (issue 7): a headless JupyterLab on loopback runs the widgets tutorial through the server's REST and
kernel websocket API, and the widget models are created (comm_open on `jupyter.widget`). No browser is needed."""
import json, os, secrets, socket, subprocess, sys, time, urllib.error, urllib.request, uuid
from pathlib import Path
import pytest
from rsworkbench.core import repo_root

websocket = pytest.importorskip('websocket', reason='websocket-client is not installed')
pytest.importorskip('jupyterlab', reason='JupyterLab is not installed')
pytest.importorskip('ipykernel', reason='ipykernel is not installed')

TUTORIAL = repo_root()/'nbs'/'tutorials'/'widgets_tour.ipynb'
START_TIMEOUT, CELL_TIMEOUT, TOTAL_TIMEOUT = 60, 60, 150

def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

class _Server:
    def __init__(self, port, token, proc, log):
        self.port, self.token, self.proc, self.log = port, token, proc, log
        self.base = f'http://127.0.0.1:{port}'
    def api(self, method, path, body=None, timeout=20):
        req = urllib.request.Request(self.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={'Authorization': f'token {self.token}', 'Content-Type': 'application/json'})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
        return json.loads(data) if data else None
    def tail(self):
        self.log.flush()
        return Path(self.log.name).read_text(errors='replace')[-3000:]

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    "JupyterLab on 127.0.0.1 with a random free port and a token, its own config/runtime dirs; always terminated."
    home = tmp_path_factory.mktemp('jupyter')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home/'config'), JUPYTER_RUNTIME_DIR=str(home/'runtime'),
               IPYTHONDIR=str(home/'ipython'), JUPYTER_PLATFORM_DIRS='1', MPLBACKEND='Agg', HF_HUB_OFFLINE='1',
               TRANSFORMERS_OFFLINE='1', PYTHONUNBUFFERED='1')
    env.pop('JUPYTER_TOKEN', None)
    log = open(home/'server.log', 'w+')
    cmd = [sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
           '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={repo_root()}',
           '--ServerApp.open_browser=False', '--LabApp.news_url=', '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate',
           '--LabApp.extension_manager=readonly', '--ServerApp.shutdown_no_activity_timeout=600']
    if hasattr(os, 'geteuid') and os.geteuid() == 0: cmd.append('--allow-root')  # CI containers run as root
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=repo_root(), start_new_session=True)
    srv = _Server(port, token, proc, log)
    try:
        deadline = time.time() + START_TIMEOUT
        while True:
            assert proc.poll() is None, f'JupyterLab exited with {proc.returncode}:\n{srv.tail()}'
            try:
                if 'version' in srv.api('GET', '/api', timeout=2): break
            except OSError: pass
            assert time.time() < deadline, f'JupyterLab did not answer on port {port} within {START_TIMEOUT}s:\n{srv.tail()}'
            time.sleep(0.3)
        # the lab application itself is served, and the API refuses requests without the token
        with urllib.request.urlopen(urllib.request.Request(f'{srv.base}/lab', headers={'Authorization': f'token {token}'}), timeout=20) as r:
            assert r.status == 200 and b'jupyter' in r.read().lower()
        with pytest.raises(urllib.error.HTTPError) as e: urllib.request.urlopen(f'{srv.base}/api/kernels', timeout=10)
        assert e.value.code == 403
        yield srv
    finally:
        proc.terminate()  # the server shuts its kernels down on SIGTERM
        try: proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9); proc.wait(10)
        log.close()

def _msg(msg_type, content, session):
    return {'header': {'msg_id': uuid.uuid4().hex, 'msg_type': msg_type, 'username': 'test', 'session': session,
                       'date': '', 'version': '5.3'},
            'parent_header': {}, 'metadata': {}, 'content': content, 'channel': 'shell', 'buffers': []}

def _execute(ws, code, session, timeout):
    "Run `code`; returns (execute_reply content, iopub messages of this request) once the kernel is idle again."
    req = _msg('execute_request', {'code': code, 'silent': False, 'store_history': True, 'user_expressions': {},
                                   'allow_stdin': False, 'stop_on_error': True}, session)
    ws.send(json.dumps(req))
    mid, reply, iopub, idle = req['header']['msg_id'], None, [], False
    deadline = time.time() + timeout
    while not (reply is not None and idle):
        left = deadline - time.time()
        if left <= 0: raise TimeoutError(f'no reply in {timeout}s to:\n{code}')
        ws.settimeout(left)
        m = json.loads(ws.recv())
        if m.get('parent_header', {}).get('msg_id') != mid: continue
        if m['channel'] == 'shell' and m['msg_type'] == 'execute_reply': reply = m['content']
        elif m['channel'] == 'iopub':
            iopub.append(m)
            if m['msg_type'] == 'status' and m['content']['execution_state'] == 'idle': idle = True
    return reply, iopub

@pytest.fixture
def kernel(lab):
    "A python3 kernel started through POST /api/kernels, and a websocket on its channels; deleted afterwards."
    k = lab.api('POST', '/api/kernels', {'name': 'python3'}, timeout=30)
    ws = None
    try:
        ws = websocket.create_connection(f'ws://127.0.0.1:{lab.port}/api/kernels/{k["id"]}/channels?token={lab.token}',
                                         timeout=30, header=[f'Authorization: token {lab.token}'])
        yield k, ws
    finally:
        if ws is not None: ws.close()
        try: lab.api('DELETE', f'/api/kernels/{k["id"]}', timeout=20)
        except OSError: pass

@pytest.mark.slow
@pytest.mark.timeout(TOTAL_TIMEOUT + START_TIMEOUT)
def test_widgets_tutorial_runs_in_jupyterlab(lab, kernel):
    k, ws = kernel
    assert any(x['id'] == k['id'] for x in lab.api('GET', '/api/kernels'))
    session, t0 = uuid.uuid4().hex, time.time()
    cells = [''.join(c['source']) for c in json.loads(TUTORIAL.read_text())['cells'] if c['cell_type'] == 'code']
    assert cells and 'view()' in cells[-1]
    setup = "import os; os.environ.update(MPLBACKEND='Agg', HF_HUB_OFFLINE='1', TRANSFORMERS_OFFLINE='1')\n%matplotlib agg"
    opened, views, errors = [], [], []
    for code in [setup] + cells:
        left = TOTAL_TIMEOUT - (time.time() - t0)
        assert left > 0, f'the tutorial took more than {TOTAL_TIMEOUT}s'
        reply, iopub = _execute(ws, code, session, min(CELL_TIMEOUT, left))
        assert reply['status'] == 'ok', f"cell failed:\n{code}\n{reply.get('ename')}: {reply.get('evalue')}\n" + \
            '\n'.join(reply.get('traceback', []))[-3000:]
        errors += [m['content'] for m in iopub if m['msg_type'] == 'error']
        opened += [m['content'] for m in iopub if m['msg_type'] == 'comm_open']
        views += [m['content']['data'] for m in iopub if m['msg_type'] in ('display_data', 'execute_result')
                  and 'application/vnd.jupyter.widget-view+json' in m['content'].get('data', {})]
    assert not errors, errors
    # widget models were created: one comm per model, on the ipywidgets target
    widget_models = [c for c in opened if c.get('target_name') == 'jupyter.widget']
    assert widget_models, f"no comm_open on 'jupyter.widget' (saw {[c.get('target_name') for c in opened]})"
    names = {c['data'].get('state', {}).get('_model_name') for c in widget_models}
    assert 'VBoxModel' in names, names
    # the last cell, `cs.view()`, displays a VBox whose model is one of those opened
    assert views, 'cs.view() displayed no widget view'
    model_id = views[-1]['application/vnd.jupyter.widget-view+json']['model_id']
    assert model_id in {c['comm_id'] for c in widget_models}
    # the widget's state is live in the kernel: the VBox holds the controls and an output
    reply, iopub = _execute(ws, 'v = cs.view(); print(type(v).__name__, len(v.children), v.model_id)', session, 30)
    out = ''.join(m['content'].get('text', '') for m in iopub if m['msg_type'] == 'stream')
    assert reply['status'] == 'ok' and out.startswith('VBox'), out
