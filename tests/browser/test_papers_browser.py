"""The muP paper notebook (``notebooks/papers/yang_hu_2021_mup.ipynb``) in headless Chromium, in JupyterLab and as a
Voila app: run it, and check that its figures are drawn with data and that no error shows.

A paper notebook has no widgets (it shows ``workbench.papers.reproduce``'s verdict and figures), so the check is
:func:`tests.browser.harness.check_static_notebook` rather than the widget-changing one of the main notebooks.
Slow tier (WORKBENCH_SLOW=1). The entry's fast mode costs minutes on a loaded 2-core machine (past the harness's
240 s for a notebook's cells), and its numbers are tests/test_papers.py's business: here the fixture ``mup_result``
computes it once in the test process (or reads what test_papers.py computed in the same run) into the per-run papers
cache (``$WORKBENCH_PAPERS_CACHE``, which the servers and so the kernels inherit). The notebook then runs every cell in
the browser, its ``papers.reproduce`` reading that cached result (keyed by the source hash, so it is what the current
code computes), and the check is about what a person sees: the verdict, the four figures drawn with data, no error.
Should the cache miss in the kernel, the cells compute the entry themselves within ``RUN_TIMEOUT`` seconds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid

import pytest

_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.environ.setdefault("WORKBENCH_PAPERS_TEST_RUN", uuid.uuid4().hex)
os.environ.setdefault("WORKBENCH_PAPERS_CACHE", os.path.join(tempfile.gettempdir(), f"workbench-papers-{_run}"))

from tests.browser import harness  # noqa: E402
from tests.browser.conftest import NOTEBOOKS  # noqa: E402

NOTEBOOK = "yang_hu_2021_mup.ipynb"
#: the entry's three figures (feature update, NTK drift, muTransfer; workbench.plots.papers) and the verdict chart
MIN_FIGURES = 4
#: seconds the notebook's cells may take (a cache miss computes the entry in the kernel: minutes on a loaded machine)
RUN_TIMEOUT = 600.0


@pytest.fixture(scope="module")
def mup_result():
    """The entry's fast-mode result, computed here (or read from the per-run cache) before any kernel starts."""
    import time

    from workbench import config, papers

    assert config.fast_mode(), "the browser suite runs in fast mode (WORKBENCH_FAST=1), as its kernels do"
    start = time.monotonic()
    # under the kernels' default float width (float32: the cache key holds it; the entry itself verifies in float64
    # either way), not the test process's x64 (tests/conftest.py)
    with config.precision("float32"):
        rep = papers.reproduce("yang_hu_2021_mup", fast=True)
    return rep, time.monotonic() - start


@pytest.fixture(scope="module")
def papers_root(tmp_path_factory):
    """A temporary folder holding a copy of the muP notebook (autosave never dirties the repository)."""
    root = tmp_path_factory.mktemp("papers-served")
    shutil.copy2(NOTEBOOKS / "papers" / NOTEBOOK, root / NOTEBOOK)
    return root


@pytest.fixture(scope="module")
def papers_lab(browser, papers_root, tmp_path_factory):
    with harness.running_server("lab", papers_root, tmp_path_factory.mktemp("papers-lab")) as server:
        yield server


@pytest.fixture(scope="module")
def papers_voila(browser, papers_root, tmp_path_factory):
    with harness.running_server("voila", papers_root, tmp_path_factory.mktemp("papers-voila")) as server:
        yield server


def _check(server, **kw):
    try:
        return harness.check_static_notebook(**kw, base_url=server.url, notebook=NOTEBOOK, min_figures=MIN_FIGURES,
                                             run_timeout=RUN_TIMEOUT)
    except harness.NotebookCheckFailed as exc:
        pytest.fail(f"{exc}\n--- {server.name} server log (tail) ---\n{server.log_tail(25)}", pytrace=False)


@pytest.mark.slow
def test_mup_notebook_in_jupyterlab(mup_result, browser, papers_lab, screenshot_dir, timings):
    timings.add("papers/yang_hu_2021_mup fast result (test process)", seconds=mup_result[1])
    shot = screenshot_dir / "lab-papers-yang_hu_2021_mup.png"
    result = _check(papers_lab, browser=browser, screenshot=shot, voila=False)
    timings.add(f"lab papers/{NOTEBOOK}", result)
    assert result.figures >= MIN_FIGURES and shot.exists()


@pytest.mark.slow
def test_mup_notebook_in_voila(mup_result, browser, papers_voila, papers_root, screenshot_dir, timings):
    shot = screenshot_dir / "voila-papers-yang_hu_2021_mup.png"
    code = harness.notebook_code_lines(papers_root / NOTEBOOK)
    result = _check(papers_voila, browser=browser, screenshot=shot, voila=True, code_lines=code)
    timings.add(f"voila papers/{NOTEBOOK}", result)
    assert result.figures >= MIN_FIGURES and shot.exists()


@pytest.mark.slow  # two small notebooks in the JupyterLab server of this module (kernel starts: ~20 s)
def test_static_check_fails_on_an_error_or_a_missing_figure(browser, papers_lab, papers_root, screenshot_dir):
    """The check can fail: a notebook whose cell raises, and one that draws fewer figures than asked."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    # a kernelspec, so that JupyterLab starts the kernel rather than asking for one in a dialog
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import plotly.graph_objects as go\n"
                                          "go.Figure(go.Scatter(x=[0, 1], y=[1, 2]))"),
                nbformat.v4.new_code_cell("1 / 0")]
    nbformat.write(nb, papers_root / "fixture_static_error.ipynb")
    with pytest.raises(harness.NotebookCheckFailed, match=r"(?s)error shown.*ZeroDivisionError"):
        harness.check_static_notebook(browser, papers_lab.url, "fixture_static_error.ipynb",
                                      screenshot_dir / "lab-fixture_static_error.png", voila=False, min_figures=1)
    nb.cells = nb.cells[:1]
    nbformat.write(nb, papers_root / "fixture_static_one_figure.ipynb")
    with pytest.raises(harness.NotebookCheckFailed, match=r"1 plotly figure\(s\) on the page, expected at least 2"):
        harness.check_static_notebook(browser, papers_lab.url, "fixture_static_one_figure.ipynb",
                                      screenshot_dir / "lab-fixture_static_one_figure.png", voila=False, min_figures=2)
