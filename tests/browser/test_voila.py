"""Every notebook as a Voila app (code hidden), in headless Chromium: render, change a widget, see the change.

The broken-callback fixture must fail here too.
"""

from __future__ import annotations

import pytest

from tests.browser import harness
from tests.browser.conftest import notebook_names


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


def test_broken_callback_fails_in_voila(browser, voila_server, screenshot_dir, timings):
    shot = screenshot_dir / "voila-fixture_broken_callback.png"
    with pytest.raises(harness.NotebookCheckFailed, match=r"(?s)error shown after changing slider.*ZeroDivisionError"):
        harness.check_voila_notebook(browser, voila_server.url, "fixture_broken_callback.ipynb", shot)
    timings.add("voila fixture_broken_callback (must fail)", seconds=0.0)
