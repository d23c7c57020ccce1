"""The bad-input probe harness (tests/probe_api.py, issue 20): a cheap in-process sample in the fast tier
(so the probe definitions cannot rot), and the whole harness, a fresh process per probe, in the slow tier."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests import probe_api

SAMPLE = [p for p in probe_api.PROBES if p.cheap]


def test_the_probe_list_covers_the_issue():
    names = [p.name for p in probe_api.PROBES]
    assert len(names) == len(set(names)), "probe names must be unique"
    assert len(names) >= 220
    kinds = {p.kind for p in probe_api.PROBES}
    assert kinds == {"error", "return", "cli-error", "cli-return"}
    groups = {n.split(".")[0].split(" ")[0] for n in names}
    for g in ("kernels", "nets", "layers", "train", "dynamics", "hessian", "linalg", "rmt", "gen", "lr_batch",
              "sweep", "store", "data", "datasets", "models", "losses", "stats", "parser", "price", "symbolic", "cli"):
        assert g in groups, g
    assert all(p.words for p in probe_api.PROBES if p.kind == "cli-error")


@pytest.mark.parametrize("probe", SAMPLE, ids=[p.name for p in SAMPLE])
def test_cheap_probe_in_process(probe):
    outcome, detail = probe_api.run_in_process(probe)
    assert outcome in probe_api.PASSING, f"{outcome}: {detail}"


def test_the_classifier_tells_the_outcomes_apart():
    err = probe_api.E("x", "raise ValueError('width must be an integer')", "width")
    assert probe_api.classify_python(err, probe_api.execute_snippet(err.code))[0] == "clear error"
    vague = probe_api.E("x", "raise ValueError('bad value')", "width")
    assert probe_api.classify_python(vague, probe_api.execute_snippet(vague.code))[0] == "unnamed error"
    overflow = probe_api.E("x", "raise OverflowError('width too large')", "width")
    assert probe_api.classify_python(overflow, probe_api.execute_snippet(overflow.code))[0] == "unnamed error"
    silent = probe_api.E("x", "1 + 1", "width")
    assert probe_api.classify_python(silent, probe_api.execute_snippet(silent.code))[0] == "silent wrong"
    wrong = probe_api.R("x", "assert 1 == 2, 'off'")
    assert probe_api.classify_python(wrong, probe_api.execute_snippet(wrong.code))[0] == "silent wrong"
    cli = probe_api.C("x", "report", "--seed")
    assert probe_api.classify_cli(cli, 1, "", "Traceback (most recent call last):\n ...")[0] == "traceback"
    assert probe_api.classify_cli(cli, 2, "", "workbench: error: --seed: expected a seed\n")[0] == "clear error"
    assert probe_api.classify_cli(cli, 2, "", "workbench: error: bad\n")[0] == "unnamed error"


@pytest.mark.slow
def test_every_probe_in_a_fresh_process():
    # its own process (python -m tests.probe_api): it forks each probe from a parent with no JAX backend,
    # which this pytest process is not
    proc = subprocess.run([sys.executable, "-m", "tests.probe_api"], cwd=probe_api.ROOT, env=probe_api._env(),
                          capture_output=True, text=True, timeout=3600)
    table = proc.stdout[proc.stdout.find("outcome"):]
    assert proc.returncode == 0, table or proc.stderr[-2000:]
    for cls in ("hang", "silent wrong", "unnamed error", "traceback", "unexpected error"):
        assert f"{cls:18s} {0:6d}" in table, table


def test_a_probe_over_the_time_limit_is_a_hang():
    # a new interpreter per probe (fork=False: this pytest process has a live JAX backend, not to be forked);
    # the child imports only the standard library, so this costs the 1 s limit and an interpreter start
    sleeper = probe_api.R("sleeps", "import time\ntime.sleep(30)")
    by_class = probe_api.run_all([sleeper], time_limit=1.0, verbose=False, fork=False)
    assert [p.name for p, _, _ in by_class["hang"]] == ["sleeps"]
