"""How fast the notebooks answer in a real browser: JupyterLab in headless Chromium, full sizes by default.

Per notebook: seconds from "Run all" to the first plotly figure with data (first paint) and to all figures drawn
with no panel still computing; per control type (slider, dropdown), the median over 3 moves of the latency to a
visible acknowledgement (a status line or a figure changed) and to the updated figure (a figure changed and no
panel status says "computing"). Reuses the browser tests' harness (``tests/browser/harness.py``).

    python benchmarks/ui.py                      # every notebook, full sizes
    python benchmarks/ui.py --fast 00 05         # fast mode, notebooks whose name starts with 00 or 05

Numbers depend on the machine and its load: the table prints the device, the CPU count and the load average.
There is no peer library for this measurement (it times this project's own notebooks).
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
JS_COMPUTING = r"""
() => Array.from(document.querySelectorAll('.widget-html')).some((e) => /computing|queued/.test(e.innerText))
"""


def _has_data(fps: list[str]) -> int:
    return sum(fp.split(":", 1)[0] != "0" for fp in fps)


def measure_notebook(browser, base_url: str, notebook: str, moves: int = 3, timeout: float = 900.0) -> dict:
    """Open, run all, time first/all figures, then move each control type ``moves`` times."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    row: dict = {"notebook": notebook}
    try:
        page.goto(f"{base_url}/lab/tree/{notebook}?reset", wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function(harness.JS_LAB_READY, timeout=120_000, polling=200)
        page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.ready")
        start = time.monotonic()
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        first = None
        stable_since, last = None, None
        while time.monotonic() - start < timeout:
            fps = harness._fingerprints(page)
            now = time.monotonic() - start
            if first is None and _has_data(fps):
                first = now
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
        row["first_figure_s"] = first
        row["all_figures_s"] = stable_since
        controls = page.evaluate(harness.JS_CONTROLS)
        for kind in ("slider", "dropdown"):
            index = next((i for i, (k, _label) in enumerate(controls) if k == kind), None)
            if index is None:
                continue
            acks, dones = [], []
            for _ in range(moves):
                before, status = harness._fingerprints(page), page.evaluate(harness.JS_STATUS)
                t0 = time.monotonic()
                harness._change_control(page, index, kind, kind)
                ack = done = None
                while time.monotonic() - t0 < timeout:
                    fps, st = harness._fingerprints(page), page.evaluate(harness.JS_STATUS)
                    t = time.monotonic() - t0
                    if ack is None and (fps != before or st != status):
                        ack = t
                    if fps != before and not page.evaluate(JS_COMPUTING):
                        done = t
                        break
                    page.wait_for_timeout(50)
                acks.append(ack if ack is not None else float("nan"))
                dones.append(done if done is not None else float("nan"))
                page.wait_for_timeout(500)
            row[f"{kind}_ack_s"] = statistics.median(acks)
            row[f"{kind}_figure_s"] = statistics.median(dones)
        return row
    finally:
        page.close()
        harness.shutdown_lab_kernels(base_url)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefixes", nargs="*", help="notebook name prefixes (default: every notebook)")
    ap.add_argument("--fast", action="store_true", help="fast mode (WORKBENCH_FAST=1) instead of full sizes")
    ap.add_argument("--moves", type=int, default=3)
    args = ap.parse_args()
    chromium = harness.find_chromium()
    if chromium is None:
        sys.exit("no Chromium found (apt-get install chromium, or set WORKBENCH_CHROMIUM)")
    names = sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")
                   if not args.prefixes or any(p.name.startswith(x) for x in args.prefixes))
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(REPO / ".cache" / "jax"))
    from playwright.sync_api import sync_playwright

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
                    rows.append(measure_notebook(browser, server.url, n, moves=args.moves))
                    print(rows[-1], flush=True)
            browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    load = os.getloadavg()
    print(f"\nJupyterLab + headless Chromium, {'fast mode' if args.fast else 'full sizes'}, CPU x{os.cpu_count()}, "
          f"load average {load[0]:.1f} (seconds; control latencies: median of {args.moves} moves)")
    head = ("notebook", "first figure", "all figures", "slider ack", "slider figure", "dropdown ack",
            "dropdown figure")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['notebook']} | {fmt(r.get('first_figure_s'))} | {fmt(r.get('all_figures_s'))} | "
              f"{fmt(r.get('slider_ack_s'))} | {fmt(r.get('slider_figure_s'))} | {fmt(r.get('dropdown_ack_s'))} | "
              f"{fmt(r.get('dropdown_figure_s'))} |")


if __name__ == "__main__":
    main()
