"""The paper notebooks and ``tests/test_papers.py`` share fast-mode results within one pytest run.

``workbench.papers.reproduce`` caches in ``$WORKBENCH_PAPERS_CACHE`` (keyed by a hash of the package's source,
so a cached result is what the current code computes); here that folder is unique to this pytest run (shared by
its xdist workers through ``PYTEST_XDIST_TESTRUNUID``), so nothing carries over from an earlier run.
"""

import os
import tempfile
import uuid

_run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or os.environ.setdefault("WORKBENCH_PAPERS_TEST_RUN", uuid.uuid4().hex)
os.environ.setdefault("WORKBENCH_PAPERS_CACHE", os.path.join(tempfile.gettempdir(), f"workbench-papers-{_run}"))

# The paper notebooks run in the slow tier (WORKBENCH_SLOW=1): each is a thin view of workbench.papers.reproduce,
# whose two cheap entries tests/test_papers.py checks in every ./run test, and their nbmake runs (15 s each on
# 2 cores at the least) do not fit the fast tier's 12 minutes.
collect_ignore = [] if os.environ.get("WORKBENCH_SLOW") == "1" else sorted(
    f for f in os.listdir(os.path.dirname(__file__)) if f.endswith(".ipynb"))
