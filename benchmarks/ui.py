"""How fast the notebooks answer in a real browser: JupyterLab in headless Chromium, full sizes by default.

Per notebook: seconds from "Run all" to the start of the panel cell (the kernel's ``execute_input`` message of
the first cell that builds a ``...Panel(``, timed in the page), from the panel cell's start to the first plotly
figure with data (first paint; the number the issue's 5 s bound is about), and to all figures drawn with no
panel still computing. Then every live control (slider, dropdown; in page order), moved ``--moves`` times:
the median latency to a visible acknowledgement (a status line or a figure changed), to completion (a figure
changed and no panel status says "computing"), whether the move started a background experiment ("experiment",
the status said "computing" at some point) or not ("theory"), and for experiment moves the longest gap between
streamed partial results (move -> first figure change, between changes, last change -> done). Each row is
printed as soon as it is measured; a notebook that runs past ``--timeout`` seconds is cut there (what was
measured is kept) and the next one starts. Reuses the browser tests' harness (``tests/browser/harness.py``).

    python benchmarks/ui.py                      # every notebook, full sizes
    python benchmarks/ui.py 01 --moves 3 --timeout 900
    python benchmarks/ui.py --fast 00 05         # fast mode, notebooks whose name starts with 00 or 05

Numbers depend on the machine and its load: the table prints the device, the CPU count and the load average
(before and after). There is no peer library for this measurement (it times this project's own notebooks).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser import harness  # noqa: E402

#: status text of a panel whose background experiment is still running
#: the panels' status lines (class wb-status): what the runner says it is doing, not the panel's description
JS_PANEL_STATUS = r"""
() => Array.from(document.querySelectorAll('.wb-status')).map((e) => e.innerText).join('\n')
"""

JS_COMPUTING = r"""
() => Array.from(document.querySelectorAll('.widget-html')).some((e) => /computing|queued/.test(e.innerText))
"""

#: a background experiment runs or waits: the runner's status ("computing <what>...", "experiment queued"), not
#: the instant part's bare "computing..."
JS_EXPERIMENT = r"""
() => Array.from(document.querySelectorAll('.widget-html')).some((e) => /computing [^.]|queued/.test(e.innerText))
"""

#: record the kernel's execute_input messages (a cell starts executing) with page timestamps (ms)
JS_HOOK_KERNEL = r"""
() => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.__wbInputs = [];
  k.iopubMessage.connect((_, msg) => {
    if (msg.header.msg_type === 'execute_input') window.__wbInputs.push([performance.now(), msg.content.code]);
  });
  return performance.now();
}
"""

#: page time (ms) the first panel cell started executing, or null
JS_PANEL_START = r"""
() => { const hit = (window.__wbInputs || []).find(([_t, code]) => /[A-Z]\w*Panel\(/.test(code));
        return hit ? hit[0] : null; }
"""

JS_NOW = "() => performance.now()"


def _has_data(fps: list[str]) -> int:
    return sum(fp.split(":", 1)[0] != "0" for fp in fps)


def _median(xs: list[float | None]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def _move(page, index: int, kind: str, label: str, limit: float) -> dict:
    """One move of control ``index``: ack, done, experiment or not, the longest gap between partial results."""
    # scrolled to first: the clock starts at the key press or selection, as a person's wait does (scrolling the
    # page of figures back up to the controls is the harness's work, not the panel's)
    page.locator(f'[data-wb-control="{index}"]').scroll_into_view_if_needed(timeout=10_000)
    before, status = harness._fingerprints(page), page.evaluate(harness.JS_STATUS)
    t0 = time.monotonic()
    harness._change_control(page, index, kind, label)
    ack = done = None
    experiment = False
    changes: list[float] = []
    last = before
    while time.monotonic() - t0 < limit:
        fps, st = harness._fingerprints(page), page.evaluate(harness.JS_STATUS)
        t = time.monotonic() - t0
        computing = page.evaluate(JS_COMPUTING)
        experiment = experiment or page.evaluate(JS_EXPERIMENT)
        if ack is None and (fps != before or st != status):
            ack = t
        if fps != last:
            changes.append(t)
            last = fps
        if fps != before and not computing:
            done = t
            break
        page.wait_for_timeout(50)
    end = done if done is not None else time.monotonic() - t0
    marks = [0.0, *changes, end]
    # an unfinished move keeps the panel's status text (an error shows there) for the row
    status_end = None if done is not None else " | ".join(
        line.strip() for line in page.evaluate(JS_PANEL_STATUS).splitlines() if line.strip())[:400]
    return {"ack": ack, "done": done, "experiment": experiment, "status_at_timeout": status_end,
            "gap": max(b - a for a, b in zip(marks, marks[1:])) if experiment else None, "changes": changes}


def measure_notebook(browser, base_url: str, notebook: str, moves: int = 3, timeout: float = 900.0,
                     move_timeout: float = 180.0, emit=print, marks: bool = False) -> dict:
    """Open, run all, time the panel cell's first figure and all figures, then move each live control ``moves``
    times; stops at ``timeout`` seconds for the notebook (rows measured so far are kept and emitted)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    row: dict = {"notebook": notebook, "controls": []}
    deadline = time.monotonic() + timeout
    try:
        page.goto(f"{base_url}/lab/tree/{notebook}?reset", wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function(harness.JS_LAB_READY, timeout=120_000, polling=200)
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.ready")
        t_run = page.evaluate(JS_HOOK_KERNEL)
        start = time.monotonic()
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        first = first_ms = None
        stable_since, last = None, None
        while time.monotonic() < deadline:
            fps = harness._fingerprints(page)
            now = time.monotonic() - start
            if first is None and _has_data(fps):
                first, first_ms = now, page.evaluate(JS_NOW)
            busy = page.evaluate(harness.JS_LAB_KERNEL_IDLE) != "idle" or page.evaluate(JS_COMPUTING)
            if fps and fps == last and not busy and _has_data(fps):
                if stable_since is None:
                    stable_since = now
                elif now - stable_since > 1.0:
                    break
            else:
                stable_since = None
            last = fps
            page.wait_for_timeout(100)
        else:
            row["timed_out"] = "run all"
        panel_ms = page.evaluate(JS_PANEL_START)
        row["first_figure_s"] = first
        row["panel_start_s"] = None if panel_ms is None else (panel_ms - t_run) / 1000
        row["first_figure_from_panel_s"] = (None if panel_ms is None or first_ms is None
                                            else (first_ms - panel_ms) / 1000)
        row["all_figures_s"] = stable_since
        emit(f"{notebook}: run all -> panel cell {_fmt(row['panel_start_s'])} s, panel cell -> first figure "
             f"{_fmt(row['first_figure_from_panel_s'])} s (run all -> first figure {_fmt(first)} s), all figures "
             f"{_fmt(stable_since)} s" + (" [TIMED OUT]" if "timed_out" in row else ""))
        if "timed_out" in row:
            return row
        controls = page.evaluate(harness.JS_CONTROLS)
        for index, (kind, label) in enumerate(controls):
            results = []
            for _ in range(moves):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                results.append(_move(page, index, kind, label, min(move_timeout, left)))
                page.wait_for_timeout(500)
            if not results:
                row["timed_out"] = f"control {index}"
                break
            c = {"control": f"{kind} #{index} {label!r}", "moves": len(results),
                 "class": "experiment" if any(r["experiment"] for r in results) else "theory",
                 "ack_s": _median([r["ack"] for r in results]), "done_s": _median([r["done"] for r in results]),
                 "max_ack_s": max((r["ack"] for r in results if r["ack"] is not None), default=None),
                 "max_gap_s": max((r["gap"] for r in results if r["gap"] is not None), default=None),
                 "unfinished": sum(r["done"] is None for r in results),
                 "status_at_timeout": next((r["status_at_timeout"] for r in results if r["status_at_timeout"]), None)}
            row["controls"].append(c)
            emit(f"  {notebook} {c['control']} [{c['class']}]: ack {_fmt(c['ack_s'])} s (max {_fmt(c['max_ack_s'])}),"
                 f" done {_fmt(c['done_s'])} s, longest gap between partial results {_fmt(c['max_gap_s'])} s,"
                 f" {c['moves']} moves" + (f", {c['unfinished']} unfinished (status then: "
                                            f"{c['status_at_timeout']!r})" if c["unfinished"] else ""))
            if marks:  # when each figure change came, per move (where a long gap sits)
                for r in results:
                    emit(f"    figure changes at {', '.join(f'{t:.2f}' for t in r['changes'])} s; done {_fmt(r['done'])} s")
        if "timed_out" in row:
            emit(f"  {notebook}: TIMED OUT after {timeout:.0f} s ({row['timed_out']}); next notebook")
        return row
    finally:
        page.close()
        harness.shutdown_lab_kernels(base_url)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefixes", nargs="*", help="notebook name prefixes (default: every notebook)")
    ap.add_argument("--fast", action="store_true", help="fast mode (WORKBENCH_FAST=1) instead of full sizes")
    ap.add_argument("--moves", type=int, default=3, help="moves per control (the medians are over these)")
    ap.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook before it is cut")
    ap.add_argument("--move-timeout", type=float, default=180.0, help="seconds one control move may take")
    ap.add_argument("--marks", action="store_true", help="print the times of the figure changes after each move")
    args = ap.parse_args()
    chromium = harness.find_chromium()
    if chromium is None:
        sys.exit("no Chromium found (apt-get install chromium, or set WORKBENCH_CHROMIUM)")
    names = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")
                   if not args.prefixes or any(p.name.startswith(x) for x in args.prefixes))
    # what `./run lab` uses (use_compilation_cache interactive): its own cache, every program stored
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".cache" / "jax-interactive"))
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", "-1")
    from playwright.sync_api import sync_playwright

    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="wb-ui-"))
    root = tmp / "served"
    root.mkdir()
    for n in names:
        shutil.copy2(REPO / "notebooks" / n, root / n)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=harness.CHROMIUM_ARGS, headless=True)
            with harness.running_server("lab", root, tmp, fast=args.fast) as server:
                for n in names:
                    try:
                        rows.append(measure_notebook(browser, server.url, n, moves=args.moves, timeout=args.timeout,
                                                     move_timeout=args.move_timeout, marks=args.marks,
                                                     emit=lambda line: print(line, flush=True)))
                    except Exception as exc:  # one notebook's failure must not lose the others' rows
                        print(f"{n}: FAILED ({type(exc).__name__}: {exc})", flush=True)
                        rows.append({"notebook": n, "controls": [], "timed_out": f"failed: {type(exc).__name__}"})
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"\nJupyterLab + headless Chromium, {'fast mode' if args.fast else 'full sizes'}, CPU x{os.cpu_count()}, "
          f"load average {load0[0]:.1f} before, {load1[0]:.1f} after (seconds; control latencies: median of "
          f"{args.moves} moves)")
    head = ("notebook", "run all -> panel cell", "panel cell -> first figure", "all figures")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['notebook']} | {_fmt(r.get('panel_start_s'))} | {_fmt(r.get('first_figure_from_panel_s'))} | "
              f"{_fmt(r.get('all_figures_s'))}{' (cut)' if r.get('timed_out') else ''} |")
    head = ("notebook", "control", "class", "ack", "complete", "longest gap between partial results")
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        for c in r["controls"]:
            print(f"| {r['notebook']} | {c['control']} | {c['class']} | {_fmt(c['ack_s'])} | {_fmt(c['done_s'])} | "
                  f"{_fmt(c['max_gap_s'])} |")


if __name__ == "__main__":
    main()
