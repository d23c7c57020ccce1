"""Real-browser harness: start JupyterLab / Voila servers, drive headless Chromium with Playwright.

Used by the browser tests (``tests/browser/test_*.py``) and nothing else. The pieces:

* :func:`find_chromium` / :func:`launch_browser`: Debian's Chromium through Playwright, headless, with the
  flags this machine needs (no sandbox as root, no GPU, no background networking on a closed network).
* :class:`Server`: a JupyterLab or Voila process on 127.0.0.1 with a free port and no token, started in its
  own process group and always stopped by its own process id (then any kernel it left behind, by id).
* :func:`check_lab_notebook` / :func:`check_voila_notebook`: open a notebook, run it, wait for the widgets and
  plotly figures, change one widget, and assert that some figure's data changed and that no error shows.
* :func:`check_zoom_survives_update`: zoom the figures of the zoom fixture as a person's drag does, change the
  slider, and assert the zoom was kept (same uirevision) or reset (a new uirevision) while the data changed.
  Failures raise :class:`NotebookCheckFailed` with what was seen, and the screenshot is always written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]

#: how long one notebook may take to run all its cells in fast mode (kernel start and jax import included)
RUN_TIMEOUT_S = float(os.environ.get("WORKBENCH_BROWSER_RUN_TIMEOUT", "240"))
#: how long a figure may take to change once a widget change started a recomputation (fast mode)
CHANGE_TIMEOUT_S = float(os.environ.get("WORKBENCH_BROWSER_CHANGE_TIMEOUT", "90"))
#: how long to wait for any reaction (a figure or a status line changes) before trying the next control:
#: some controls only take effect with a button (an expensive sweep), others redraw at once
REACT_TIMEOUT_S = float(os.environ.get("WORKBENCH_BROWSER_REACT_TIMEOUT", "5"))
#: how many controls to try, in page order, before deciding that no widget changes any figure
MAX_CONTROLS = 15


class NotebookCheckFailed(AssertionError):
    """A notebook did not behave as a person expects in the browser (error shown, no figure, no change)."""


# ----------------------------------------------------------------------------------------------- browser
def find_chromium() -> str | None:
    """Path of a Chromium executable: ``$WORKBENCH_CHROMIUM``, else Debian's ``/usr/bin/chromium``, else None."""
    env = os.environ.get("WORKBENCH_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for path in CHROMIUM_CANDIDATES:
        if Path(path).exists():
            return path
    return shutil.which("chromium")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------------------------- servers
@dataclass
class Server:
    """A Jupyter server process (JupyterLab or Voila) in its own process group, with its log file."""

    name: str
    proc: subprocess.Popen
    url: str
    log: Path
    children: set[int] = field(default_factory=set)

    def log_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def remember_children(self) -> None:
        """Record the process ids of the server's descendants (kernels), to stop them by id later."""
        try:
            import psutil

            self.children |= {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}
        except Exception:  # the server may be gone already; nothing to remember
            pass

    def stop(self) -> None:
        """Stop the server by its own process id (SIGTERM, then SIGKILL), then any kernel it left behind."""
        self.remember_children()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        for pid in sorted(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def server_env(tmp: Path, *, fast: bool = True) -> dict[str, str]:
    """Environment of a test server: fast mode (kernels inherit it; ``fast=False``: full sizes, for
    ``benchmarks/ui.py``), Jupyter dirs in ``tmp``, no browser."""
    env = dict(os.environ)
    if fast:
        env["WORKBENCH_FAST"] = "1"
    else:
        env.pop("WORKBENCH_FAST", None)
    env["JUPYTER_CONFIG_DIR"] = str(tmp / "jupyter-config")
    env["JUPYTER_RUNTIME_DIR"] = str(tmp / "jupyter-runtime")
    env["JUPYTER_DATA_DIR"] = str(tmp / "jupyter-data")
    env["IPYTHONDIR"] = str(tmp / "ipython")
    env["BROWSER"] = "true"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # one thread per kernel: the machine is shared with the other pytest worker
    env.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    return env


def _bin(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    return str(path) if path.exists() else name


def start_server(kind: str, root: Path, tmp: Path, *, timeout: float = 90.0, fast: bool = True) -> Server:
    """Start ``kind`` ("lab" or "voila") serving ``root`` on 127.0.0.1 with a free port and no token."""
    port = free_port()
    common = ["--no-browser", f"--port={port}"]
    if kind == "lab":
        root_ok = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # CI runs as root
        cmd = [_bin("jupyter"), "lab", *common, *root_ok, "--ip=127.0.0.1", f"--ServerApp.root_dir={root}",
               "--IdentityProvider.token=", "--ServerApp.terminals_enabled=False", "--ServerApp.disable_check_xsrf=True",
               "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               f"--LabApp.workspaces_dir={tmp / 'workspaces'}", "--ServerApp.open_browser=False"]
        ready = f"http://127.0.0.1:{port}/api/status"
    elif kind == "voila":
        # a closed app page's kernel is shut down by the check itself; the culler only catches leftovers. Its
        # timeout must exceed the time a loaded machine takes from the end of the cells to the page's websocket
        # (the culler counts a kernel with no connection yet as idle: at 15 s it killed kernels under load)
        cmd = [_bin("voila"), *common, "--Voila.ip=127.0.0.1", f"--Voila.root_dir={root}",
               "--VoilaConfiguration.show_tracebacks=True", "--MappingKernelManager.cull_idle_timeout=600",
               "--MappingKernelManager.cull_interval=60", str(root)]
        ready = f"http://127.0.0.1:{port}/"
    else:
        raise ValueError(f"kind must be 'lab' or 'voila', got {kind!r}")
    log = tmp / f"{kind}-server.log"
    labconfig = tmp / "jupyter-config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    # no "get notified about Jupyter news?" toast over the screenshots
    (labconfig / "page_config.json").write_text(
        '{"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": true}}')
    fh = open(log, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=root, env=server_env(tmp, fast=fast), stdout=fh, stderr=subprocess.STDOUT,
                            start_new_session=True)
    fh.close()
    server = Server(kind, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{kind} server exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(ready, timeout=2) as r:
                if r.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{kind} server not ready after {timeout:.0f} s:\n{server.log_tail()}")


@contextlib.contextmanager
def running_server(kind: str, root: Path, tmp: Path, *, fast: bool = True) -> Iterator[Server]:
    """Context manager around :func:`start_server`; the server is stopped by its process id in a finally."""
    server = start_server(kind, root, tmp, fast=fast)
    try:
        yield server
    finally:
        server.stop()


# ----------------------------------------------------------------------------------------------- page logic
#: A short fingerprint of every plotly figure's data on the page (one string per figure, in page order).
JS_FIGURE_FINGERPRINTS = r"""
() => {
  const hash = (s) => { let h = 5381; for (let i = 0; i < s.length; i++) { h = ((h << 5) + h + s.charCodeAt(i)) | 0; } return h; };
  const plain = (v) => (ArrayBuffer.isView(v) ? Array.from(v) : v);
  return Array.from(document.querySelectorAll('.js-plotly-plot')).map((gd) => {
    const data = (gd.data || []).map((t) => [t.type, t.name, plain(t.x), plain(t.y), plain(t.z)]);
    const s = JSON.stringify(data);
    return `${(gd.data || []).length}:${s.length}:${hash(s)}`;
  });
}
"""

#: Text of everything on the page that reads as an error: error outputs, tracebacks on stderr, panel status.
JS_ERRORS = r"""
() => {
  const found = [];
  const sel = [
    '[data-mime-type="application/vnd.jupyter.error"]',
    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
  ];
  for (const el of document.querySelectorAll(sel.join(','))) {
    const t = el.innerText || '';
    if (el.matches('[data-mime-type="application/vnd.jupyter.error"]') || /Traceback|Error|Exception/.test(t)) {
      found.push(t.slice(0, 2000));
    }
  }
  for (const el of document.querySelectorAll('.widget-html, .widget-htmlmath')) {
    const t = el.innerText || '';
    if (/^\s*error:/i.test(t)) found.push('panel status: ' + t.slice(0, 500));
  }
  for (const el of document.querySelectorAll('.jupyter-widgets .jp-RenderedText, .widget-output')) {
    const t = el.innerText || '';
    if (/Traceback \(most recent call last\)/.test(t)) found.push('widget output: ' + t.slice(0, 2000));
  }
  const body = document.body ? document.body.innerText : '';
  if (/There was an error when executing cell/.test(body)) found.push('voila: There was an error when executing a cell');
  const bad = body.match(/.{0,200}(Error displaying widget|Error rendering|Failed to load model class).{0,200}/s);
  if (bad) found.push('widget failed to render: ' + bad[0]);
  return found;
}
"""

#: Text of the HTML widgets (a panel's status line says "computing...", "updated in ...", "error: ...").
JS_STATUS = r"""
() => Array.from(document.querySelectorAll('.widget-html, .widget-htmlmath')).map((e) => e.innerText).join('\n')
"""

#: The enabled, visible sliders and dropdowns in page order; each is tagged ``data-wb-control=<index>``.
JS_CONTROLS = r"""
() => {
  const out = [];
  for (const el of document.querySelectorAll('.widget-slider .noUi-handle, .widget-dropdown select')) {
    if (el.offsetParent === null) continue;  // hidden (another tab, a collapsed box)
    if (el.closest('.wb-export')) continue;  // the export bar writes files, it changes no figure
    if (el.closest('.wb-deferred')) continue;  // acts only through a button (an expensive run)
    let kind;
    if (el.closest('.widget-slider')) {
      if (el.closest('.mod-disabled') || el.closest('[disabled]')) continue;
      kind = 'slider';
    } else {
      if (el.disabled || el.options.length < 2) continue;
      kind = 'dropdown';
    }
    el.setAttribute('data-wb-control', String(out.length));
    const label = el.closest('.widget-inline-hbox, .jupyter-widgets');
    const desc = label ? (label.querySelector('.widget-label') || {}).innerText || '' : '';
    out.push([kind, desc.trim()]);
  }
  return out;
}
"""


@dataclass
class NotebookResult:
    """What one browser check saw: figures before and after, which control changed them, timings."""

    notebook: str
    figures: int
    changed_by: str
    seconds: float
    screenshot: Path
    phases: dict[str, float] = field(default_factory=dict)


def _fingerprints(page) -> list[str]:
    return page.evaluate(JS_FIGURE_FINGERPRINTS)


def _errors(page) -> list[str]:
    return page.evaluate(JS_ERRORS)


def _screenshot(page, screenshot: Path) -> None:
    """Screenshot with the first figure scrolled into view (JupyterLab scrolls inside its own panel)."""
    with contextlib.suppress(Exception):
        page.evaluate("() => { const f = document.querySelector('.js-plotly-plot');"
                      " if (f) f.scrollIntoView({block: 'center'}); }")
    page.screenshot(path=str(screenshot), full_page=True)


def _fail(page, screenshot: Path, message: str) -> None:
    with contextlib.suppress(Exception):
        _screenshot(page, screenshot)
    console = getattr(page, "wb_console", [])
    log = ("\nbrowser console errors (last 8):\n" + "\n".join(console[-8:])) if console else ""
    raise NotebookCheckFailed(f"{message}\n(screenshot: {screenshot}){log}")


def _new_page(browser):
    """A page that records its console errors and uncaught exceptions (reported when a check fails)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.wb_console = []
    page.on("console", lambda m: page.wb_console.append(f"{m.type}: {m.text[:300]}") if m.type == "error" else None)
    page.on("pageerror", lambda exc: page.wb_console.append(f"pageerror: {str(exc)[:300]}"))
    return page


def _empty(fps: list[str]) -> int:
    """How many figures have no trace at all (a person would see an empty plot)."""
    return sum(fp.split(":", 1)[0] == "0" for fp in fps)


#: how long the figures may stay empty after the cells finished and the figures stopped changing
EMPTY_GRACE_S = 10.0


def _wait_for_figures(page, screenshot: Path, timeout: float) -> list[str]:
    """Wait until plotly figures are drawn, at least one with data, and the set is stable for a second."""
    deadline = time.monotonic() + timeout
    last, stable_since, empty_since = None, None, None
    while time.monotonic() < deadline:
        errors = _errors(page)
        if errors:
            _fail(page, screenshot, "error shown while running the notebook:\n" + "\n---\n".join(errors))
        fps = _fingerprints(page)
        now = time.monotonic()
        if fps and fps == last:
            if stable_since is not None and now - stable_since > 1.0:
                # at least one figure with data (a figure may wait for a button, e.g. a long sweep)
                if _empty(fps) < len(fps):
                    return fps
                empty_since = empty_since or now
                if now - empty_since > EMPTY_GRACE_S:
                    _fail(page, screenshot, f"all {len(fps)} figure(s) show no data after the cells ran "
                                            f"(empty plots)")
        else:
            stable_since, empty_since = now, None
        last = fps
        page.wait_for_timeout(250)
    _fail(page, screenshot, f"no plotly figure with data appeared within {timeout:.0f} s (figures seen: {last})")
    raise AssertionError("unreachable")


def _float_or_none(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _change_control(page, index: int, kind: str, label: str) -> str:
    """Change the control tagged ``data-wb-control=index``: a slider one step, a dropdown to its next option."""
    el = page.locator(f'[data-wb-control="{index}"]')
    el.scroll_into_view_if_needed(timeout=10_000)
    if kind == "slider":
        before = el.get_attribute("aria-valuenow")
        # at its maximum: one step down. Decided from the handle's own attributes before the key press, never by
        # waiting to see whether the value moved: on a busy machine the handle's aria-valuenow can lag the key
        # press by more than any fixed wait, and a second press then undid the move (measured: a w_std step
        # 1.4 -> 1.45 followed by 1.45 -> 1.4 a few hundred ms later, two recomputations, the figure unchanged)
        now, top = _float_or_none(before), _float_or_none(el.get_attribute("aria-valuemax"))
        at_max = now is not None and top is not None and now >= top
        el.focus()
        el.press("ArrowLeft" if at_max else "ArrowRight")
        return f"slider {label!r} ({before} -> {'one step down' if at_max else 'one step up'})"
    options = el.locator("option").all_text_contents()
    current = el.evaluate("s => s.selectedIndex")
    target = (current + 1) % len(options)
    el.select_option(index=target)
    return f"dropdown {label!r} ({options[current]!r} -> {options[target]!r})"


def _interact(page, screenshot: Path, before: list[str], change_timeout: float) -> str:
    """Change controls in page order until a figure's data changes; fail if none does or an error shows.

    A control that shows no reaction within ``REACT_TIMEOUT_S`` (neither a figure nor any status text
    changed) is taken as one that acts only through a button, and the next control is tried. A control
    that started a recomputation (its status text changed) must change a figure within ``change_timeout``.
    """
    controls = page.evaluate(JS_CONTROLS)
    if not controls:
        _fail(page, screenshot, "no slider or dropdown found to change")
    tried = []
    for index, (kind, label) in enumerate(controls[:MAX_CONTROLS]):
        status = page.evaluate(JS_STATUS)
        what = _change_control(page, index, kind, label)
        tried.append(what)
        start = time.monotonic()
        reacted = False
        while True:
            errors = _errors(page)
            if errors:
                _fail(page, screenshot, f"error shown after changing {what}:\n" + "\n---\n".join(errors))
            now = _fingerprints(page)
            if now != before and len(now) >= len(before):
                # let the redraw settle, then look once more for an error
                page.wait_for_timeout(300)
                errors = _errors(page)
                if errors:
                    _fail(page, screenshot, f"error shown after changing {what}:\n" + "\n---\n".join(errors))
                return what
            reacted = reacted or page.evaluate(JS_STATUS) != status
            elapsed = time.monotonic() - start
            if reacted and elapsed > change_timeout:
                _fail(page, screenshot, f"changing {what} started a recomputation, but no figure's data changed "
                                        f"within {change_timeout:.0f} s (tried: {'; then '.join(tried)})")
            if not reacted and elapsed > REACT_TIMEOUT_S:
                break  # no reaction at all: try the next control
            page.wait_for_timeout(200)
    _fail(page, screenshot, f"no figure's data changed after changing {'; then '.join(tried)}")
    raise AssertionError("unreachable")


JS_LAB_READY = "() => !!(window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget" \
               " && window.jupyterapp.shell.currentWidget.sessionContext)"

JS_LAB_RUN_ALL = r"""
async (timeoutMs) => {
  const app = window.jupyterapp;
  const panel = app.shell.currentWidget;
  const run = (async () => {
    await panel.context.ready;
    await panel.sessionContext.ready;
    const ok = await app.commands.execute('notebook:run-all-cells');
    return ok === undefined ? true : ok;
  })();
  const timeout = new Promise((resolve) => setTimeout(() => resolve('timeout'), timeoutMs));
  return await Promise.race([run, timeout]);
}
"""

JS_LAB_KERNEL_IDLE = r"""
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const k = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return k ? k.status : 'none';
}
"""


def shutdown_lab_kernels(base_url: str) -> int:
    """Shut down every session's kernel of a JupyterLab server (one notebook's kernel must not idle on)."""
    import json

    with urllib.request.urlopen(f"{base_url}/api/sessions", timeout=10) as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{base_url}/api/sessions/{s['id']}", method="DELETE")
        with contextlib.suppress(urllib.error.URLError, OSError):
            urllib.request.urlopen(req, timeout=30).close()
    return len(sessions)


JS_VOILA_SHUTDOWN = r"""
async () => {
  const cfg = document.getElementById('jupyter-config-data');
  if (!cfg) return 0;
  const id = JSON.parse(cfg.textContent).kernelId;
  const m = document.cookie.match(/\b_xsrf=([^;]*)/);
  const r = await fetch(`/voila/api/shutdown/${id}`, {method: 'POST', headers: m ? {'X-XSRFToken': m[1]} : {}});
  return r.status;
}
"""


def check_lab_notebook(browser, base_url: str, notebook: str, screenshot: Path, *,
                       change_timeout: float = CHANGE_TIMEOUT_S) -> NotebookResult:
    """Open ``notebook`` in JupyterLab, run all cells, change a widget, assert a figure changed, no error."""
    start = time.monotonic()
    page = _new_page(browser)
    try:
        page.goto(f"{base_url}/lab/tree/{notebook}?reset", wait_until="domcontentloaded", timeout=60_000)
        page.wait_for_function(JS_LAB_READY, timeout=60_000, polling=200)
        phases = {"open": time.monotonic() - start}
        try:
            ok = page.evaluate(JS_LAB_RUN_ALL, int(RUN_TIMEOUT_S * 1000))
        except Exception as exc:  # noqa: BLE001 - reported with the screenshot
            _fail(page, screenshot, f"run-all-cells failed: {exc}")
        phases["run"] = time.monotonic() - start
        if ok == "timeout":
            _fail(page, screenshot, f"the cells did not finish within {RUN_TIMEOUT_S:.0f} s")
        before = _wait_for_figures(page, screenshot, RUN_TIMEOUT_S)
        phases["figures"] = time.monotonic() - start
        if ok is False:
            _fail(page, screenshot, "run-all-cells reported a failed cell:\n" + "\n---\n".join(_errors(page)))
        what = _interact(page, screenshot, before, change_timeout)
        phases["interact"] = time.monotonic() - start
        _screenshot(page, screenshot)
        return NotebookResult(notebook, len(before), what, time.monotonic() - start, screenshot, phases)
    finally:
        page.close()
        with contextlib.suppress(Exception):
            shutdown_lab_kernels(base_url)


def notebook_code_lines(path: Path) -> list[str]:
    """The first meaningful line of each code cell of a notebook file (to check that an app hides code)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            line = line.strip()
            if len(line) > 8 and not line.startswith("#"):
                lines.append(line)
                break
    return lines


def check_voila_notebook(browser, base_url: str, notebook: str, screenshot: Path,
                         code_lines: Sequence[str] = (), change_timeout: float = CHANGE_TIMEOUT_S) -> NotebookResult:
    """Open ``notebook`` as a Voila app, wait for it to render, check that none of ``code_lines`` shows
    (an app hides code), change a widget, and assert a figure changed with no error, as in JupyterLab.
    A single load: a widget that Voila fails to restore ("Error displaying widget: model not found") fails
    the check."""
    return _check_voila_once(browser, base_url, notebook, screenshot, code_lines, change_timeout)


def _open_voila_and_wait(page, base_url: str, notebook: str, screenshot: Path, run_timeout: float,
                         start: float) -> float:
    """Open ``notebook`` as a Voila app and wait until it shows its cells; return the seconds from ``start`` to
    the page's first bytes. Voila streams the page while the kernel runs the cells, then shows them all
    (``#rendered_cells``); a run past ``run_timeout`` fails with the page's errors."""
    page.goto(f"{base_url}/voila/render/{notebook}", wait_until="commit", timeout=60_000)
    opened = time.monotonic() - start
    try:
        page.wait_for_function("() => { const el = document.getElementById('rendered_cells');"
                               " return !!el && el.style.display !== 'none'; }",
                               timeout=int(run_timeout * 1000), polling=500)
    except Exception:  # noqa: BLE001 - reported with what the page shows
        _fail(page, screenshot, f"the Voila app did not finish rendering within {run_timeout:.0f} s; errors: "
                                f"{_errors(page)}")
    return opened


def _check_voila_once(browser, base_url: str, notebook: str, screenshot: Path,
                      code_lines: Sequence[str], change_timeout: float) -> NotebookResult:
    start = time.monotonic()
    page = _new_page(browser)
    try:
        phases = {"open": _open_voila_and_wait(page, base_url, notebook, screenshot, RUN_TIMEOUT_S, start)}
        phases["run"] = time.monotonic() - start
        before = _wait_for_figures(page, screenshot, RUN_TIMEOUT_S)
        phases["figures"] = time.monotonic() - start
        body = page.evaluate("() => document.body.innerText")
        shown = [line for line in code_lines if line in body]
        if shown:
            _fail(page, screenshot, f"the Voila app shows code ({shown[:3]}); an app hides code")
        what = _interact(page, screenshot, before, change_timeout)
        phases["interact"] = time.monotonic() - start
        _screenshot(page, screenshot)
        return NotebookResult(notebook, len(before), what, time.monotonic() - start, screenshot, phases)
    finally:
        close_page(page, True)


def close_page(page, voila: bool, base_url: str | None = None) -> None:
    """Close a notebook's page and end its kernel: a Voila app through its own shutdown call and beforeunload
    handler (which carries its XSRF token); a JupyterLab page by shutting the server's kernels down."""
    if voila:
        with contextlib.suppress(Exception):
            page.evaluate(JS_VOILA_SHUTDOWN)
        page.close(run_before_unload=True)
        return
    page.close()
    if base_url is not None:
        with contextlib.suppress(Exception):
            shutdown_lab_kernels(base_url)


def check_html_file(browser, path: Path, screenshot: Path, *, min_figures: int = 1) -> int:
    """Open a standalone HTML file (a report); assert plotly drew at least ``min_figures`` figures, no JS error."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    js_errors: list[str] = []
    page.on("pageerror", lambda exc: js_errors.append(str(exc)))
    try:
        page.goto(path.resolve().as_uri(), wait_until="load", timeout=60_000)
        # drawn = plotly's SVG exists and holds at least one trace, for each of min_figures figures
        page.wait_for_function(
            "(n) => Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".filter(gd => gd.querySelector('.main-svg') && gd.querySelectorAll('.trace, .hm, .heatmaplayer image').length > 0)"
            ".length >= n", arg=min_figures, timeout=30_000, polling=200)
        n = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
        page.screenshot(path=str(screenshot), full_page=True)
        if js_errors:
            raise NotebookCheckFailed(f"JavaScript errors in {path}: {js_errors}")
        return n
    finally:
        page.close()


# ----------------------------------------------------------------------------------------------- zoom across updates
#: the range a "person" zooms every figure to (the fixture's data spans x in [0, n-1], y in [-1, 1])
ZOOM_X, ZOOM_Y = [0.5, 1.5], [0.25, 0.75]

#: zoom every LiveFigure's plot as a drag would: Plotly.relayout on the plot element (fires plotly_relayout)
JS_ZOOM = r"""
async ([x, y]) => {
  const gds = Array.from(document.querySelectorAll('.wb-live-figure .js-plotly-plot'));
  for (const gd of gds) await window.Plotly.relayout(gd, {'xaxis.range': x, 'yaxis.range': y});
  return gds.length;
}
"""

#: per LiveFigure plot: its title, how many points its first trace has, the axis ranges drawn, and whether the
#: browser had to re-apply the zoom (an update sent before the kernel heard of it)
JS_VIEWS = r"""
() => Array.from(document.querySelectorAll('.wb-live-figure .js-plotly-plot')).map((gd) => ({
  title: (gd.layout.title || {}).text || '', points: ((gd._fullData[0] || {}).y || []).length,
  x: gd._fullLayout.xaxis.range.slice(), y: gd._fullLayout.yaxis.range.slice(),
  restored: gd.dataset.wbViewRestored || 'kernel',
}))
"""


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(abs(float(u) - float(v)) < 1e-9 for u, v in zip(a, b, strict=True))


def check_zoom_survives_update(browser, base_url: str, notebook: str, screenshot: Path, *, voila: bool) -> str:
    """Open the zoom fixture (JupyterLab or a Voila app), zoom its two figures, move its slider, and assert: the
    data of both changed; the figure with the LiveFigure's constant uirevision is still zoomed; the one whose
    uirevision changed with the slider is not (plotly's rule, and the proof that this check can fail).
    Returns how the zoom was kept ("kernel": sent with the new figure; "browser": re-applied after it)."""
    page = _new_page(browser)
    try:
        if voila:
            page.goto(f"{base_url}/voila/render/{notebook}", wait_until="commit", timeout=60_000)
        else:
            page.goto(f"{base_url}/lab/tree/{notebook}?reset", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_function(JS_LAB_READY, timeout=60_000, polling=200)
            if page.evaluate(JS_LAB_RUN_ALL, int(RUN_TIMEOUT_S * 1000)) is not True:
                _fail(page, screenshot, "run-all-cells failed or timed out: " + "\n".join(_errors(page)))
        before = _wait_for_figures(page, screenshot, RUN_TIMEOUT_S)
        if len(before) != 2:
            _fail(page, screenshot, f"expected the fixture's 2 figures, saw {len(before)}")
        page.wait_for_timeout(500)  # let the figures' view trackers find their plots
        assert page.evaluate(JS_ZOOM, [ZOOM_X, ZOOM_Y]) == 2
        zoomed = page.evaluate(JS_VIEWS)
        if not all(_close(v["x"], ZOOM_X) and _close(v["y"], ZOOM_Y) for v in zoomed):
            _fail(page, screenshot, f"Plotly.relayout did not zoom: {zoomed}")
        page.wait_for_timeout(500)  # the zoom reaches the kernel (were it late, the browser re-applies it)
        controls = page.evaluate(JS_CONTROLS)
        how = []
        # round 1: the zoom reached the kernel before the slider moved, so the new figure is sent zoomed. Round 2:
        # zoom right after moving the slider: the kernel (busy 1 s with the update) hears of the zoom only after
        # it sent the figure, so the browser must re-apply the zoom to the new plot
        for zoom_x, zoom_y, zoom_after_move in ((ZOOM_X, ZOOM_Y, False), ([1.5, 2.5], [-0.5, 0.5], True)):
            zoomed = page.evaluate(JS_VIEWS)  # the points shown before this move
            what = _change_control(page, 0, *controls[0])
            if zoom_after_move:
                page.evaluate(JS_ZOOM, [zoom_x, zoom_y])
            deadline = time.monotonic() + CHANGE_TIMEOUT_S
            while True:
                views = page.evaluate(JS_VIEWS)
                if len(views) == 2 and all(v["points"] != z["points"] for v, z in zip(views, zoomed)):
                    break
                if time.monotonic() > deadline:
                    _fail(page, screenshot, f"changing {what} did not change the figures' data: {views}")
                page.wait_for_timeout(200)
            page.wait_for_timeout(800)  # a zoom re-applied in the browser lands after the new plot is drawn
            views = {v["title"]: v for v in page.evaluate(JS_VIEWS)}
            errors = _errors(page)
            if errors:
                _fail(page, screenshot, "error shown:\n" + "\n---\n".join(errors))
            kept, reset = views["kept"], views["reset"]
            if not (_close(kept["x"], zoom_x) and _close(kept["y"], zoom_y)):
                _fail(page, screenshot, f"the zoom was reset by the update ({what}): ranges x {kept['x']}, "
                                        f"y {kept['y']} instead of {zoom_x}, {zoom_y}")
            if _close(reset["x"], zoom_x) or _close(reset["y"], zoom_y):
                _fail(page, screenshot, f"a figure with a new uirevision kept the old zoom: {reset}")
            how.append(kept["restored"])
        _screenshot(page, screenshot)
        if how != ["kernel", "browser"]:
            _fail(page, screenshot, f"the zoom was kept, but not the expected way: {how} (expected kernel, browser)")
        return " then ".join(how)
    finally:
        close_page(page, voila, base_url)


# ------------------------------------------------------------------------------------------ notebooks without widgets
#: per plotly figure on the page: its title, traces, data points over all traces, and whether plotly drew it (an SVG
#: with at least one trace layer). Points are counted on ``_fullData``, where plotly.js has decoded the typed arrays
#: that plotly.py 6 sends base64-encoded (``gd.data[i].x`` may still be a ``{dtype, bdata}`` object there)
JS_FIGURE_CONTENT = r"""
() => Array.from(document.querySelectorAll('.js-plotly-plot')).map((gd) => {
  const len = (v) => (v && typeof v.length === 'number' ? v.length : 0);
  const traces = gd._fullData || [];
  return {title: ((gd.layout || {}).title || {}).text || '', traces: traces.length,
          points: traces.reduce((s, t) => s + Math.max(len(t.x), len(t.y), len(t.z)), 0),
          drawn: !!gd.querySelector('.main-svg') && gd.querySelectorAll('.trace, .bars, .points').length > 0};
})
"""


def check_static_notebook(browser, base_url: str, notebook: str, screenshot: Path, *, voila: bool,
                          min_figures: int, code_lines: Sequence[str] = (),
                          run_timeout: float = RUN_TIMEOUT_S) -> NotebookResult:
    """Open a notebook with figures but no widgets (a paper reproduction) in JupyterLab (``voila=False``: run all
    cells) or as a Voila app, and assert: at least ``min_figures`` plotly figures, every one drawn and holding data
    points, no error output or traceback anywhere, and (Voila) none of ``code_lines`` shown. ``notebook`` is a path
    relative to the server's root; ``run_timeout``: seconds the cells may take."""
    start = time.monotonic()
    page = _new_page(browser)
    ok = True  # run-all-cells: True, False (a cell failed) or "timeout"
    try:
        if voila:
            phases = {"open": _open_voila_and_wait(page, base_url, notebook, screenshot, run_timeout, start)}
        else:
            page.goto(f"{base_url}/lab/tree/{notebook}?reset", wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_function(JS_LAB_READY, timeout=60_000, polling=200)
            phases = {"open": time.monotonic() - start}
            try:
                ok = page.evaluate(JS_LAB_RUN_ALL, int(run_timeout * 1000))
            except Exception as exc:  # noqa: BLE001 - reported with the screenshot
                _fail(page, screenshot, f"run-all-cells failed: {exc}")
            if ok == "timeout":
                _fail(page, screenshot, f"the cells did not finish within {run_timeout:.0f} s")
        phases["run"] = time.monotonic() - start
        _wait_for_figures(page, screenshot, run_timeout)
        deadline = time.monotonic() + EMPTY_GRACE_S  # the last figures of a cell may still be drawing
        while True:
            figs = page.evaluate(JS_FIGURE_CONTENT)
            bad = [f for f in figs if not (f["drawn"] and f["traces"] > 0 and f["points"] > 0)]
            if (len(figs) >= min_figures and not bad) or time.monotonic() > deadline:
                break
            page.wait_for_timeout(250)
        phases["figures"] = time.monotonic() - start
        errors = _errors(page)
        if errors or ok is False:
            _fail(page, screenshot, "error shown while running the notebook:\n" + "\n---\n".join(errors or
                                                                                                ["a cell failed"]))
        if len(figs) < min_figures:
            _fail(page, screenshot, f"{len(figs)} plotly figure(s) on the page, expected at least {min_figures}: "
                                    f"{[f['title'] for f in figs]}")
        if bad:
            _fail(page, screenshot, f"figure(s) not drawn or without data: {bad}")
        if voila:
            body = page.evaluate("() => document.body.innerText")
            shown = [line for line in code_lines if line in body]
            if shown:
                _fail(page, screenshot, f"the Voila app shows code ({shown[:3]}); an app hides code")
        _screenshot(page, screenshot)
        what = f"no widgets: {len(figs)} figures, {sum(f['points'] for f in figs)} points"
        return NotebookResult(notebook, len(figs), what, time.monotonic() - start, screenshot, phases)
    finally:
        close_page(page, voila, base_url)
