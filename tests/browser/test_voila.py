"""Every notebook as a Voila app (code hidden), in headless Chromium: render, change a widget, see the change.

Every app is in the slow tier (WORKBENCH_SLOW=1): each is notebook code that nbmake (and, for most, the JupyterLab
check) already execute in the fast tier, and together they cost about five minutes of the 2-core budget. The
fast tier keeps a Voila app check through the JupyterLab server's Voila route (the Binder app link, the tour:
tests/browser/test_jupyterlab.py) and the broken-callback fixture here, which must fail.
"""

from __future__ import annotations

import pytest

from tests.browser import harness
from tests.browser.conftest import notebook_names


@pytest.mark.slow
@pytest.mark.parametrize("notebook", notebook_names())
def test_notebook_in_voila(notebook, browser, voila_server, served_root, screenshot_dir, timings):
    shot = screenshot_dir / f"voila-{notebook.removesuffix('.ipynb')}.png"
    code = harness.notebook_code_lines(served_root / notebook)
    try:
        result = harness.check_voila_notebook(browser, voila_server.url, notebook, shot, code_lines=code)
    except harness.NotebookCheckFailed as exc:
        timings.add(f"voila {notebook} FAILED")
        pytest.fail(f"{exc}\n--- voila server log (tail) ---\n{voila_server.log_tail(25)}", pytrace=False)
    timings.add(f"voila {notebook}", result)
    assert result.figures >= 1 and shot.exists()


@pytest.mark.slow  # the JupyterLab broken and silent callback checks prove the harness can fail in the fast tier
def test_broken_callback_fails_in_voila(browser, voila_server, screenshot_dir, timings):
    shot = screenshot_dir / "voila-fixture_broken_callback.png"
    with pytest.raises(harness.NotebookCheckFailed, match=r"(?s)error shown after changing slider.*ZeroDivisionError"):
        harness.check_voila_notebook(browser, voila_server.url, "fixture_broken_callback.ipynb", shot)
    timings.add("voila fixture_broken_callback (must fail)", seconds=0.0)


@pytest.mark.slow  # ~25 s on 2 cores; the JupyterLab zoom check (same widget manager and renderer) is fast tier
def test_zoom_survives_an_update_in_voila(browser, voila_server, screenshot_dir, timings):
    """As in JupyterLab: the zoom survives an update in a Voila app."""
    import time

    start = time.monotonic()
    how = harness.check_zoom_survives_update(browser, voila_server.url, "fixture_zoom.ipynb",
                                             screenshot_dir / "voila-fixture_zoom.png", voila=True)
    timings.add(f"voila fixture_zoom (zoom kept by the {how})", seconds=time.monotonic() - start)
