"""End-to-end check of the explorer notebook in a real browser.

JupyterLab runs as a subprocess on 127.0.0.1 with throw-away config/data/runtime dirs; Debian's headless
chromium (no Playwright browser download: ``tools/install_chromium.sh``) opens a copy of
``notebooks/01_explore_heads.ipynb``, runs all cells, moves the ``fac-tau-perc`` slider with the keyboard
and checks that the head counts shown in the ``fac-counts`` widget change, then presses "run model" in the
default (dynamic) mode and checks that both traces and the contribution maps appear. Screenshots go to
``tests/artifacts/``.

The notebook in the repo is never opened by the server (JupyterLab autosaves): the server's root_dir is a
temporary folder holding a copy, and ``FAC_LENS_ROOT`` tells the notebook's first cell where the repo is.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "01_explore_heads.ipynb"
ARTIFACTS = REPO / "tests" / "artifacts"
INSTALL_SCRIPT = REPO / "tools" / "install_chromium.sh"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SERVER_START_TIMEOUT = 90  # s until /api/status answers
RUN_ALL_TIMEOUT = 240  # s for all cells to finish (the real notebook loads a model)
COUNTS_CHANGE_TIMEOUT = 60  # s for the kernel to recompute the counts after a slider move
RUN_MODEL_TIMEOUT = 120  # s for "run model" (two generations and two contribution maps on fac-tiny)
COUNTS_RE = re.compile(r"perception:\s*(\d+)\s*heads?.*?reasoning:\s*(\d+)\s*heads?", re.S)

# JupyterLab front-end settings for the throw-away user-settings dir: render every cell (no windowing,
# so the last cell's widgets are in the DOM), no autosave, no news or update checks.
LAB_USER_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}
LAB_PAGE_CONFIG = {
    "disabledExtensions": {
        "@jupyterlab/apputils-extension:announcements": True,
        "@jupyterlab/extensionmanager-extension": True,
    }
}


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip('the playwright package is missing: run  pip install -e ".[browser]"')
    return sync_playwright


def _find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def chromium_path() -> str:
    """Debian's chromium; installed once through the project's own set-up script when missing."""
    path = _find_chromium()
    if path:
        return path
    proc = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    path = _find_chromium()
    if proc.returncode != 0 or not path:
        tail = (proc.stdout + proc.stderr).strip()[-1500:]
        pytest.skip(
            f"chromium is not installed and `bash tools/install_chromium.sh` failed (exit {proc.returncode});"
            f" run  make setup-browser  (or  sudo bash tools/install_chromium.sh) and retry. Output:\n{tail}"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _api(base: str, token: str, path: str, method: str = "GET", timeout: float = 5):
    req = urllib.request.Request(f"{base}{path}", method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        body = resp.read()
    return json.loads(body) if body else None


def _descendants(pid: int) -> list:
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:
        return []


@pytest.fixture
def lab_server(tmp_path):
    """JupyterLab on a free localhost port serving a copy of the explorer notebook; yields (url, token)."""
    if not NOTEBOOK.is_file():
        pytest.fail(f"the explorer notebook {NOTEBOOK.relative_to(REPO)} is missing")
    root = tmp_path / "lab-root"
    root.mkdir()
    shutil.copy2(NOTEBOOK, root / NOTEBOOK.name)
    jdirs = {
        name: tmp_path / name for name in ("config", "data", "runtime", "ipython", "settings", "workspaces")
    }
    for path in jdirs.values():
        path.mkdir()
    for rel, data in LAB_USER_SETTINGS.items():
        _write_json(jdirs["settings"] / rel, data)
    _write_json(jdirs["config"] / "labconfig" / "page_config.json", LAB_PAGE_CONFIG)

    token = secrets.token_hex(16)
    port = _free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(jdirs["config"]),
        JUPYTER_DATA_DIR=str(jdirs["data"]),
        JUPYTER_RUNTIME_DIR=str(jdirs["runtime"]),
        IPYTHONDIR=str(jdirs["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(jdirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(jdirs["workspaces"]),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        FAC_LENS_ROOT=str(REPO),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_CONFIG_PATH", None)
    # The kernel: the venv's own python3 spec (sys.prefix/share/jupyter/kernels) stays on the data path;
    # its argv[0] "python" is replaced by the server's sys.executable (jupyter_client), i.e. this venv.
    cmd = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser",
        f"--IdentityProvider.token={token}",  # the non-deprecated spelling of --ServerApp.token
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--ServerApp.disable_check_xsrf=True",
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: read the kernel's status
        "--LabApp.extension_manager=readonly",  # no PyPI queries
        f"--LabApp.user_settings_dir={jdirs['settings']}",
        f"--LabApp.workspaces_dir={jdirs['workspaces']}",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI often run as root
    log_path = tmp_path / "jupyter-lab.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    children: list = []
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                _api(base, token, "/api/status", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"jupyter lab did not answer /api/status in {SERVER_START_TIMEOUT} s:\n"
                    f"{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.5)
        specs = _api(base, token, "/api/kernelspecs")["kernelspecs"]
        assert "python3" in specs, f"no python3 kernel spec: {sorted(specs)}"
        # "python"/"python3" as argv[0] is replaced by the server's sys.executable, i.e. this venv
        argv0 = specs["python3"]["spec"]["argv"][0]
        assert argv0 in ("python", "python3", sys.executable), f"python3 kernel runs {argv0}"
        yield {"base": base, "token": token, "name": NOTEBOOK.name, "log": log_path}
    finally:
        children = _descendants(proc.pid)  # the kernels run in their own sessions: collect them first
        try:
            for kernel in _api(base, token, "/api/kernels") or []:
                _api(base, token, f"/api/kernels/{kernel['id']}", method="DELETE", timeout=15)
        except Exception:
            pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for child in children:
            try:
                child.kill()
            except Exception:
                pass
        log.close()


@pytest.fixture
def page(sync_playwright, chromium_path, lab_server):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            pg = context.new_page()
            pg.set_default_timeout(30_000)
            yield pg
        finally:
            browser.close()


# ------------------------------------------------------------------------------------------- helpers

NOTEBOOK_STATE_JS = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
  if (!nb) return null;
  const prompts = [...nb.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent.trim());
  const errors = [...nb.querySelectorAll(
      '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.innerText);
  const app = window.jupyterapp;
  const widget = app && app.shell.currentWidget;
  const kernel = widget && widget.sessionContext && widget.sessionContext.session
      && widget.sessionContext.session.kernel;
  const dialog = document.querySelector('.jp-Dialog');
  return {prompts, errors, kernel: kernel ? kernel.status : null,
          dialog: dialog ? dialog.innerText : null};
}"""


def _notebook_state(page) -> dict:
    return page.evaluate(NOTEBOOK_STATE_JS) or {"prompts": [], "errors": [], "kernel": None, "dialog": None}


def _describe(state: dict) -> str:
    errors = "\n---\n".join(e[-2000:] for e in state["errors"]) or "(no stderr/error output)"
    return f"prompts={state['prompts']} kernel={state['kernel']}\nstderr/error outputs:\n{errors}"


def _is_traceback(text: str) -> bool:
    return "Traceback" in text or bool(re.search(r"^\w*(Error|Exception)\b", text, re.M))


def _open_notebook(page, server) -> None:
    page.goto(f"{server['base']}/lab/tree/{server['name']}?token={server['token']}")
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=90_000)
    deadline = time.monotonic() + 90
    while True:  # wait for the kernel (accept a kernel-selection dialog if the notebook has no kernelspec)
        state = _notebook_state(page)
        if state["dialog"]:
            page.locator(".jp-Dialog .jp-mod-accept").first.click()
        elif state["kernel"] == "idle":
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the notebook's kernel did not become idle: {_describe(state)}")
        page.wait_for_timeout(300)


def _run_all_cells(page) -> dict:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
    deadline = time.monotonic() + RUN_ALL_TIMEOUT
    settled_since = None
    while True:
        state = _notebook_state(page)
        prompts = state["prompts"]
        numbered = [bool(re.fullmatch(r"\[\d+\]:", p)) for p in prompts]
        running = any("*" in p for p in prompts)
        if prompts and all(numbered) and state["kernel"] == "idle":
            return state
        # stopped early: something ran, nothing is queued any more, the kernel is idle (an error aborts
        # the queue); give the front end two seconds to be sure before failing
        if any(numbered) and not running and state["kernel"] == "idle":
            settled_since = settled_since or time.monotonic()
            if time.monotonic() - settled_since > 2:
                pytest.fail(f"running all cells stopped before the last cell: {_describe(state)}")
        else:
            settled_since = None
        if time.monotonic() > deadline:
            pytest.fail(f"running all cells did not finish in {RUN_ALL_TIMEOUT} s: {_describe(state)}")
        page.wait_for_timeout(500)


def _wait_kernel_idle(page, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _notebook_state(page)["kernel"] != "idle" and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    page.wait_for_timeout(500)  # the last outputs reach the DOM


def _counts(page) -> str:
    return page.locator(".fac-counts").first.inner_text().strip()


def _wait_counts_change(page, before: str, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = _counts(page)
        if now != before and COUNTS_RE.search(now):
            return now
        page.wait_for_timeout(250)
    return None


# ---------------------------------------------------------------------------------------------- test


def test_explorer_notebook_in_browser(page, lab_server):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    original = NOTEBOOK.read_bytes()
    _open_notebook(page, lab_server)
    state = _run_all_cells(page)
    tracebacks = [e for e in state["errors"] if _is_traceback(e)]
    assert not tracebacks, f"a cell raised: {_describe(state)}"

    # the explorer panel rendered as live widgets (not the text repr, not "Error displaying widget")
    counts = page.locator(".jp-Notebook .fac-counts")
    try:
        counts.first.wait_for(state="visible", timeout=30_000)
    except Exception as exc:
        outputs = page.locator(".jp-Notebook .jp-Cell").last.inner_text()
        raise AssertionError(f"no .fac-counts widget rendered; last cell shows:\n{outputs[-2000:]}") from exc
    for cls in ("fac-l-perc", "fac-l-reas", "fac-tau-perc", "fac-tau-reas", "fac-g-perc", "fac-g-reas"):
        assert page.locator(f".jp-Notebook .{cls} .noUi-handle").count() == 1, f"slider .{cls} not rendered"
    before = _counts(page)
    assert COUNTS_RE.search(before), f"unexpected head-count text: {before!r}"
    counts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_explorer.png"))

    # move tau_perc with the keyboard: to the maximum, and to the minimum if the maximum changes nothing
    handle = page.locator(".jp-Notebook .fac-tau-perc .noUi-handle").first
    value_before = handle.get_attribute("aria-valuenow")
    after = None
    for key in ("End", "Home"):
        handle.focus()
        handle.press(key)
        after = _wait_counts_change(page, before, COUNTS_CHANGE_TIMEOUT if key == "End" else 30)
        if after:
            break
    value_after = handle.get_attribute("aria-valuenow")
    _wait_kernel_idle(page, 30)  # let the head map redraw before the screenshot
    counts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_explorer_after_slider.png"))
    assert value_after != value_before, f"the fac-tau-perc slider did not move (aria-valuenow {value_before})"
    assert after is not None, (
        f"head counts did not change after moving fac-tau-perc {value_before} -> {value_after}:"
        f" {before!r} -> {_counts(page)!r}; {_describe(_notebook_state(page))}"
    )
    p0, r0 = map(int, COUNTS_RE.search(before).groups())
    p1, r1 = map(int, COUNTS_RE.search(after).groups())
    assert (p0, r0) != (p1, r1), f"{before!r} -> {after!r}"
    late = [e for e in _notebook_state(page)["errors"] if _is_traceback(e)]
    assert not late, "the slider callback raised:\n" + "\n---\n".join(late)

    # press "run model" in the default mode (dynamic): both traces and the contribution maps appear
    selected_mode = page.locator(".jp-Notebook .fac-mode .mod-active").first.inner_text().strip()
    assert selected_mode == "dynamic", f"the explorer's default mode is {selected_mode!r}, expected dynamic"
    assert page.locator(".jp-Notebook .fac-trace").count() == 0, "traces shown before any run"
    run = page.locator(".jp-Notebook .fac-run").first
    run.scroll_into_view_if_needed()
    run.click()
    traces = _wait_traces(page, RUN_MODEL_TIMEOUT)
    _wait_kernel_idle(page, 30)
    page.locator(".jp-Notebook .fac-traces").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_explorer_after_run.png"))
    message = page.locator(".jp-Notebook .fac-message").first.inner_text().strip()
    assert traces is not None, f"no traces after pressing run model; message: {message!r}"
    assert "failed" not in message, f"the run button reported: {message!r}"
    vanilla, rescaled = traces
    assert vanilla and rescaled, f"empty trace: vanilla {vanilla!r}, rescaled {rescaled!r}"
    assert "<think>" in vanilla, f"the vanilla trace is not a fac-tiny reasoning trace: {vanilla!r}"
    plot = page.locator(".jp-Notebook .fac-traces ~ * img, .jp-Notebook .jp-OutputArea-output img")
    assert plot.count() >= 1, "no contribution-map figure after the run"
    assert run.is_enabled(), "the run button stayed disabled after the run"
    assert NOTEBOOK.read_bytes() == original, "the notebook in the repo was modified"


def _wait_traces(page, timeout_s: float) -> tuple[str, str] | None:
    """The vanilla and rescaled trace texts once the run button's output appeared."""
    deadline = time.monotonic() + timeout_s
    cells = page.locator(".jp-Notebook .fac-traces .fac-trace")
    while time.monotonic() < deadline:
        if cells.count() == 2:
            return cells.nth(0).inner_text().strip(), cells.nth(1).inner_text().strip()
        if "failed" in page.locator(".jp-Notebook .fac-message").first.inner_text():
            return None
        page.wait_for_timeout(250)
    return None
