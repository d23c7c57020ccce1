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

# Paper notebooks whose fast mode costs minutes on 2 cores run in the slow tier only (WORKBENCH_SLOW=1), like their
# entries' tests in tests/test_papers.py; the cheap ones run in every ./run test.
_CHEAP = {"advani_saxe_2017.ipynb", "roberts_yaida_kurtosis.ipynb"}
collect_ignore = [] if os.environ.get("WORKBENCH_SLOW") == "1" else sorted(
    f for f in os.listdir(os.path.dirname(__file__)) if f.endswith(".ipynb") and f not in _CHEAP)
