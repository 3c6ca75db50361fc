"""End-to-end check of the explorer notebook in a real browser.

JupyterLab runs as a subprocess on 127.0.0.1 with throw-away config/data/runtime dirs; Debian's headless
chromium (no Playwright browser download: ``tools/install_chromium.sh``) opens a copy of
``notebooks/01_explore_heads.ipynb``, runs all cells and then does what a user does in the explorer: picks
a sample (its image and full question appear), moves every control with the keyboard (counts, the gain grid
and the trajectory change without a run), hovers and clicks a head (its attention over the image appears),
presses "run model" in the default (dynamic) mode (traces, answer probabilities, contribution maps, a step
slider through the passes), changes a control (the results are marked stale), switches to static, asks for
the batch check, and narrows the window to 900 px (nothing overflows). Screenshots go to
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
BATCH_TIMEOUT = 300  # s for the batch check (two generations per loaded sample)
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


def _wait_for(page, predicate, timeout_s: float, what: str):
    """Poll ``predicate()`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        page.wait_for_timeout(250)
    pytest.fail(f"{what} did not happen in {timeout_s} s; {_describe(_notebook_state(page))}")


def _press(page, cls: str, key: str) -> None:
    handle = page.locator(f".jp-Notebook .{cls} .noUi-handle").first
    handle.scroll_into_view_if_needed()
    handle.focus()
    handle.press(key)


def _html(page, cls: str) -> str:
    return page.locator(f".jp-Notebook .{cls}").first.inner_html()


def _text(page, cls: str) -> str:
    return page.locator(f".jp-Notebook .{cls}").first.inner_text().strip()


SLIDERS = ("fac-l-perc", "fac-l-reas", "fac-tau-perc", "fac-tau-reas", "fac-g-perc", "fac-g-reas", "fac-beta")


def test_explorer_notebook_in_browser(page, lab_server):
    """What a user does: run the notebook, pick a sample, move every control, click a head, run the
    model, step through the dynamic mode's passes, change a control after the run, switch the mode,
    ask for the batch check, narrow the window; each time, check what the panel shows."""
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
    for cls in SLIDERS:
        assert page.locator(f".jp-Notebook .{cls} .noUi-handle").count() == 1, f"slider .{cls} not rendered"
    before = _counts(page)
    assert COUNTS_RE.search(before), f"unexpected head-count text: {before!r}"
    n_cells = page.locator(".jp-Notebook .fac-head-grid rect.fac-cell").count()
    assert n_cells == 24, f"the head grid of fac-tiny (6 x 4) shows {n_cells} heads"
    counts.first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_explorer.png"))

    # pick a sample: its image, full question, truth and kind appear
    page.locator(".jp-Notebook .fac-sample select").first.select_option(index=1)
    _wait_for(page, lambda: page.locator(".jp-Notebook .fac-image img, .jp-Notebook img.fac-image").count()
              and "truth" in _text(page, "fac-sample-info"), 30, "the sample's image and question")  # fmt: skip
    info = _text(page, "fac-sample-info")
    assert "question" in info and "…" not in info and "kind" in info, info
    before = _counts(page)

    # move tau_perc: the counts change (to the maximum, or the minimum if the maximum changes nothing)
    after = None
    for key in ("End", "Home"):
        _press(page, "fac-tau-perc", key)
        after = _wait_counts_change(page, before, COUNTS_CHANGE_TIMEOUT if key == "End" else 30)
        if after:
            break
    assert after is not None, f"head counts did not change after moving fac-tau-perc: {before!r}"
    readout = page.locator(".jp-Notebook .fac-tau-perc .widget-readout").first.inner_text().strip()
    assert re.fullmatch(r"\d\.\d{3}", readout), (
        f"tau_perc readout {readout!r} (a 0.005 step needs 3 decimals)"
    )
    # every other control changes what the panel shows, without a run. tau_perc at 0 first: every head
    # of the perception band is a perception head, so g_perc acts on some
    if _text(page, "fac-tau-perc .widget-readout") != "0.000":
        old = _counts(page)
        _press(page, "fac-tau-perc", "Home")
        _wait_counts_change(page, old, 30)
    steps = (
        ("fac-g-perc", "End", "fac-gain-grid"),
        ("fac-g-reas", "End", "fac-gain-grid"),
        ("fac-l-perc", "Home", "fac-trajectory-box"),
        ("fac-l-reas", "End", "fac-trajectory-box"),
        (
            "fac-tau-reas",
            "Home",
            "fac-trajectory-box",
        ),  # no reasoning heads: layer l_reas's heads are "others"
    )
    for cls, key, shown in steps:
        old = _html(page, shown)
        _press(page, cls, key)
        _wait_for(page, lambda s=shown, o=old: _html(page, s) != o, 30, f"moving .{cls} redraws .{shown}")
    page.locator(".jp-Notebook .fac-strategy select").first.select_option(index=1)  # B: attenuate others
    _wait_kernel_idle(page, 30)
    old = _html(page, "fac-gain-grid")
    _press(page, "fac-beta", "Home")
    _wait_for(page, lambda: _html(page, "fac-gain-grid") != old, 30, "moving beta redraws the gain grid")
    late = [e for e in _notebook_state(page)["errors"] if _is_traceback(e)]
    assert not late, "a control's callback raised:\n" + "\n---\n".join(late)

    # hover and click a head: its numbers in the tooltip; where it looks on the image and the prompt
    cell = page.locator('.jp-Notebook .fac-head-grid rect.fac-cell[data-layer="2"][data-head="1"]').first
    assert "layer 2, head 1: S_v = " in cell.locator("title").inner_html()
    cell.scroll_into_view_if_needed()
    cell.click()
    _wait_for(page, lambda: "L2 H1" in _text(page, "fac-pick-label")
              and page.locator(".jp-Notebook .fac-head-view rect.fac-patch").count(), 60, "a click on head L2 H1")  # fmt: skip
    page.screenshot(path=str(ARTIFACTS / "browser_explorer_head_click.png"))

    # run the model in the default (dynamic) mode: traces, probabilities, maps, the step slider
    selected_mode = page.locator(".jp-Notebook .fac-mode .mod-active").first.inner_text().strip()
    assert selected_mode == "dynamic", f"the explorer's default mode is {selected_mode!r}, expected dynamic"
    assert page.locator(".jp-Notebook .fac-trace").count() == 0, "traces shown before any run"
    run = page.locator(".jp-Notebook .fac-run").first
    run.scroll_into_view_if_needed()
    run.click()
    traces = _wait_traces(page, RUN_MODEL_TIMEOUT)
    _wait_kernel_idle(page, 30)
    message = _text(page, "fac-message")
    assert traces is not None, f"no traces after pressing run model; message: {message!r}"
    assert "failed" not in message, f"the run button reported: {message!r}"
    vanilla, rescaled = traces
    assert "<think>" in vanilla, f"the vanilla trace is not a fac-tiny reasoning trace: {vanilla!r}"
    assert "p rescaled" in _text(page, "fac-probabilities") and "logit difference" in _text(
        page, "fac-probabilities"
    )
    assert page.locator(".jp-Notebook .fac-maps img").count() >= 1, "no contribution-map figure after the run"
    assert run.is_enabled(), "the run button stayed disabled after the run"
    page.locator(".jp-Notebook .fac-traces").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_explorer_after_run.png"))
    step_before = _text(page, "fac-step-info")
    assert step_before.startswith("step 0"), step_before
    _press(page, "fac-step", "End")
    _wait_for(page, lambda: _text(page, "fac-step-info") != step_before, 60, "moving the step slider")
    assert "rescaled model, step" in _text(page, "fac-pick-label")  # the clicked head, at that step

    # a control moved after the run marks the results stale; switching the mode too
    assert page.locator(".jp-Notebook .fac-stale-note").count() == 0
    _press(page, "fac-g-perc", "Home")
    _wait_for(page, lambda: page.locator(".jp-Notebook .fac-stale-note").count(), 30, "stale marking")
    page.locator(".jp-Notebook .fac-mode button", has_text="static").first.click()
    _wait_for(page, lambda: "static" in page.locator(".jp-Notebook .fac-mode .mod-active").first.inner_text(),
              30, "switching to static")  # fmt: skip
    assert page.locator(".jp-Notebook .fac-stale-note").count() == 1

    # the batch check: accuracy of this setting vs vanilla with its interval, progress shown
    batch = page.locator(".jp-Notebook .fac-batch").first
    batch.scroll_into_view_if_needed()
    batch.click()
    result = _wait_for(page, lambda: "95% CI" in _text(page, "fac-batch-result-box")
                       and _text(page, "fac-batch-result-box"), BATCH_TIMEOUT, "the batch check")  # fmt: skip
    assert "vanilla" in result and "failed" not in result, result

    # a narrow window: nothing overflows the panel, slider readouts are not cut
    page.set_viewport_size({"width": 900, "height": 1000})
    page.wait_for_timeout(1500)
    overflow = page.evaluate(
        """() => {
        const panel = document.querySelector('.jp-Notebook .fac-panel');
        const readouts = [...panel.querySelectorAll('.widget-readout')]
            .filter(r => r.offsetParent && r.scrollWidth > r.clientWidth + 1).map(r => r.innerText);
        const right = panel.getBoundingClientRect().right;
        const wide = [...panel.querySelectorAll('*')].filter(e => e.getBoundingClientRect().right > right + 2)
            .slice(0, 5).map(e => e.tagName + '.' + [...e.classList].join('.'));
        return {panel: panel.scrollWidth - panel.clientWidth, readouts, wide};
    }"""
    )
    page.locator(".jp-Notebook .fac-counts").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "browser_explorer_narrow.png"))
    assert overflow["panel"] <= 2, (
        f"the panel overflows a 900 px window by {overflow['panel']} px: {overflow['wide']}"
    )
    assert not overflow["readouts"], f"slider readouts cut at 900 px: {overflow['readouts']}"
    late = [e for e in _notebook_state(page)["errors"] if _is_traceback(e)]
    assert not late, "a callback raised:\n" + "\n---\n".join(late)
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
