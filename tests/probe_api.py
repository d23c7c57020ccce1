"""Bad-input probes of the whole workbench (issue 20), as a careful user would try them.

Each probe is a short Python snippet (or a ``workbench ...`` command line) with the outcome it must have:

- ``E(name, code, words)``: a clear ``ValueError``/``TypeError`` (or ``OSError`` for files) whose message
  contains every word of ``words`` (the argument, the layer or the file at fault; case-insensitive);
- ``R(name, code)``: a normal return; the snippet itself checks the result with ``assert`` (divergence
  reported at step k, an interrupted sweep keeps its finished points, identical keys give identical results,
  a huge request refused at once with a memory estimate...);
- ``C(name, argv, words)``: the command line prints one line ``workbench: error: ...`` naming ``words`` and
  exits with status 2 (no traceback);
- ``CR(name, argv, check)``: the command line exits 0 and ``check(stdout)`` holds.

Run all of them, each in a fresh interpreter with a time limit, two at a time::

    python -m tests.probe_api            # the table of outcomes and every probe that did not pass
    python -m tests.probe_api parser cli # only probes whose name starts with one of these prefixes
    python -m tests.probe_api --spawn    # a new interpreter per probe (slower) instead of a forked child

Each probe runs in its own process with its own working directory and a time limit (a timeout is a hang):
by default a child forked from a parent that has imported the package but started no JAX backend (see
``PRELOAD``), so a probe pays for its own work, not for importing JAX again.

Outcome classes: ``clear error``, ``correct return`` (passing), ``hang`` (time limit), ``silent wrong``
(a normal return where an error belongs, or a failed result check), ``unnamed error`` (an error whose
message misses the words, or an exception type such as ``OverflowError``/``IndexError`` that is no
sentence), ``traceback`` (the command line printed a traceback or more than one line), ``unexpected
error`` (an error where a normal return belongs).

This module imports only the standard library: a probe's own imports are its cost.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.probes import C, CR, E, PROBES, Probe, R  # noqa: F401  (the list and its constructors, for callers)

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 60.0
MARK = "@@PROBE "
PASSING = ("clear error", "correct return")
CLASSES = ("clear error", "correct return", "hang", "silent wrong", "unnamed error", "traceback", "unexpected error")
# exception types that are sentences about the input (OSError: a file or path at fault)
CLEAR_TYPES = (ValueError, TypeError, OSError)


# ----------------------------------------------------------------------------------------- classification
def _words_ok(message: str, words: tuple[str, ...]) -> bool:
    low = message.lower()
    return all(w.lower() in low for w in words)


def classify_python(probe: Probe, outcome: dict) -> tuple[str, str]:
    """(class, detail) from the child's report ``{"raised": type or None, "clear": bool, "message": str}``."""
    raised, message = outcome.get("raised"), outcome.get("message", "")
    if probe.kind == "return":
        if raised is None:
            return "correct return", ""
        if raised == "AssertionError":
            return "silent wrong", f"result check failed: {message}"
        return "unexpected error", f"{raised}: {message}"
    if raised is None:
        return "silent wrong", "returned normally where an error belongs"
    if raised == "AssertionError":  # a safety assertion inside the snippet (e.g. the closed form was executed)
        return "silent wrong", message
    if not outcome.get("clear"):
        return "unnamed error", f"{raised} (not a ValueError/TypeError): {message}"
    if not message.strip() or not _words_ok(message, probe.words):
        return "unnamed error", f"{raised}: {message!r} misses {probe.words}"
    return "clear error", f"{raised}: {message}"


def classify_cli(probe: Probe, rc: int, out: str, err: str) -> tuple[str, str]:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if "Traceback" in err:
        return "traceback", err[-600:]
    if probe.kind == "cli-return":
        if rc != 0:
            return "unexpected error", f"exit {rc}: {err[-300:]}"
        return ("correct return", "") if eval(probe.check, {"out": out}) else ("silent wrong", out[-300:])
    if rc == 0:
        return "silent wrong", "exit status 0 where an error belongs"
    error_lines = [ln for ln in lines if ln.startswith("workbench: error:")]
    if rc != 2 or len(error_lines) != 1 or len(lines) != 1:
        return "traceback", f"exit {rc}, {len(lines)} stderr line(s): {err[-600:]}"
    if not _words_ok(error_lines[0], probe.words):
        return "unnamed error", f"{error_lines[0]!r} misses {probe.words}"
    return "clear error", error_lines[0]


# ----------------------------------------------------------------------------------------- execution
def execute_snippet(code: str) -> dict:
    """Run ``code`` in a fresh namespace; report what it raised (in this process: the child, or a test)."""
    try:
        exec(compile(code, "<probe>", "exec"), {"__name__": "__probe__"})
    except BaseException as exc:  # noqa: BLE001 - classified, never swallowed silently
        if isinstance(exc, (SystemExit, KeyboardInterrupt)) and not isinstance(exc, KeyboardInterrupt):
            raise
        return {"raised": type(exc).__name__, "clear": isinstance(exc, CLEAR_TYPES),
                "message": " ".join(str(exc).split())[:800] or "",
                "where": traceback.format_exc(limit=-2)[-600:]}
    return {"raised": None}


def _child() -> None:
    code = sys.stdin.read()
    outcome = execute_snippet(code)
    sys.stdout.write("\n" + MARK + json.dumps(outcome) + "\n")
    sys.stdout.flush()
    os._exit(0)  # no interpreter teardown: cheaper, and a stuck atexit cannot turn a result into a hang


def _env() -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), WORKBENCH_FAST="1",
               JAX_PLATFORMS=env.get("JAX_PLATFORMS", "cpu"), TQDM_DISABLE="1",
               XLA_FLAGS=env.get("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false"))
    env.pop("WORKBENCH_DEBUG", None)
    return env


def run_probe(probe: Probe, time_limit: float = TIME_LIMIT_S) -> tuple[str, str, float]:
    """Run one probe in a fresh interpreter (its own temporary working directory) and classify it."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="probe-") as cwd:
        if probe.kind in ("cli-error", "cli-return"):
            cmd, stdin = [sys.executable, "-m", "workbench", *probe.argv], ""
        else:
            cmd, stdin = [sys.executable, "-c", "from tests.probe_api import _child; _child()"], probe.code
        proc = subprocess.Popen(cmd, cwd=cwd, env=_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        try:
            out, err = proc.communicate(stdin, timeout=time_limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the probe's own process group, started above
            proc.communicate()
            return "hang", f"no answer within {time_limit:.0f} s", time.perf_counter() - start
    elapsed = time.perf_counter() - start
    if probe.kind in ("cli-error", "cli-return"):
        return (*classify_cli(probe, proc.returncode, out, err), elapsed)
    marks = [ln for ln in out.splitlines() if ln.startswith(MARK)]
    if not marks:
        return "unexpected error", f"the child died (exit {proc.returncode}): {err[-600:]}", elapsed
    return (*classify_python(probe, json.loads(marks[-1][len(MARK):])), elapsed)


def run_in_process(probe: Probe) -> tuple[str, str]:
    """Run a probe in this process (the fast test tier): snippets by ``exec``, the CLI through ``cli.main``."""
    if probe.kind in ("cli-error", "cli-return"):
        from workbench import cli

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = cli.main(list(probe.argv))
            except SystemExit as exc:  # argparse --help / usage errors
                rc = exc.code if isinstance(exc.code, int) else 2
        return classify_cli(probe, rc, out.getvalue(), err.getvalue())
    return classify_python(probe, execute_snippet(probe.code))


# modules a probe may import: the parent imports them once, before any JAX backend exists, and forks a child
# per probe (a fresh process: its own JAX backend, working directory and time limit; nothing a probe does
# reaches the parent or the next probe). Spawning an interpreter per probe costs seconds of imports each.
PRELOAD = ("jax", "jax.numpy", "numpy", "scipy.special", "sympy", "optax", "workbench", "workbench.cli",
           "workbench.kernels", "workbench.nets", "workbench.layers", "workbench.training", "workbench.dynamics",
           "workbench.hessian", "workbench.linalg", "workbench.rmt", "workbench.generalization", "workbench.lr_batch",
           "workbench.experiments", "workbench.data", "workbench.datasets", "workbench.models", "workbench.losses",
           "workbench.stats", "workbench.store", "workbench.symbolic", "workbench.symbolic.price",
           "workbench.symbolic.expressions", "workbench.reports")


def _preload() -> None:
    import importlib

    os.environ.update({k: v for k, v in _env().items() if k in ("WORKBENCH_FAST", "JAX_PLATFORMS", "TQDM_DISABLE",
                                                                  "XLA_FLAGS")})
    for name in PRELOAD:
        importlib.import_module(name)
    from jax._src import xla_bridge

    if xla_bridge._backends:  # a fork would copy a live, multithreaded XLA runtime
        raise RuntimeError("a preloaded module started a JAX backend; the probes cannot be forked safely")


def _child_body(probe: Probe, cwd: str, out_path: str, err_path: str) -> int:
    """In the forked child: run the probe with stdout/stderr in files; the exit status of the CLI or 0."""
    os.chdir(cwd)
    for fd, path in ((1, out_path), (2, err_path)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    if probe.kind in ("cli-error", "cli-return"):
        from workbench import cli

        try:
            return int(cli.main(list(probe.argv)) or 0)
        except SystemExit as exc:  # argparse: --help, usage errors
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # what `python -m workbench` would print: a traceback and status 1
            traceback.print_exc()
            return 1
    outcome = execute_snippet(probe.code)
    sys.stdout.write("\n" + MARK + json.dumps(outcome) + "\n")
    return 0


def _start(probe: Probe) -> dict:
    cwd = tempfile.mkdtemp(prefix="probe-")
    out_path, err_path = os.path.join(cwd, ".probe-out"), os.path.join(cwd, ".probe-err")
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the parent's code
        code = 1
        try:
            os.setsid()  # its own process group: a hung probe is killed with everything it started
            code = _child_body(probe, cwd, out_path, err_path)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
    return {"probe": probe, "pid": pid, "cwd": cwd, "out": out_path, "err": err_path, "start": time.perf_counter()}


def _finish(job: dict, status: int | None, time_limit: float) -> tuple[str, str, float]:
    import shutil

    probe, elapsed = job["probe"], time.perf_counter() - job["start"]
    try:
        if status is None:
            return "hang", f"no answer within {time_limit:.0f} s", elapsed
        out = Path(job["out"]).read_text(errors="replace") if os.path.exists(job["out"]) else ""
        err = Path(job["err"]).read_text(errors="replace") if os.path.exists(job["err"]) else ""
        rc = os.waitstatus_to_exitcode(status)
        if probe.kind in ("cli-error", "cli-return"):
            return (*classify_cli(probe, rc, out, err), elapsed)
        marks = [ln for ln in out.splitlines() if ln.startswith(MARK)]
        if not marks:
            return "unexpected error", f"the child died (exit {rc}): {err[-600:]}", elapsed
        return (*classify_python(probe, json.loads(marks[-1][len(MARK):])), elapsed)
    finally:
        shutil.rmtree(job["cwd"], ignore_errors=True)


def run_all(probes: list[Probe], *, workers: int = 2, time_limit: float = TIME_LIMIT_S,
            verbose: bool = True, fork: bool = True) -> dict[str, list[tuple[Probe, str, float]]]:
    """Every probe in a fresh process, ``workers`` at a time; the probes grouped by outcome class.

    ``fork=True``: children forked from this process after :func:`_preload` (no threads, no JAX backend in
    the parent); ``fork=False``: a new interpreter per probe (:func:`run_probe`), slower by the imports."""
    by_class: dict[str, list[tuple[Probe, str, float]]] = {c: [] for c in CLASSES}
    done = 0

    def record(pr: Probe, result: tuple[str, str, float]) -> None:
        nonlocal done
        done += 1
        by_class[result[0]].append((pr, result[1], result[2]))
        if verbose:
            print(f"[{done:3d}/{len(probes)}] {result[0]:16s} {result[2]:5.1f}s  {pr.name}", flush=True)

    if not fork:
        with ThreadPoolExecutor(workers) as pool:
            for pr, fut in [(pr, pool.submit(run_probe, pr, time_limit)) for pr in probes]:
                record(pr, fut.result())
        return by_class
    _preload()
    queue, running = list(probes), []
    while queue or running:
        while queue and len(running) < workers:
            running.append(_start(queue.pop(0)))
        time.sleep(0.05)
        for job in list(running):
            pid, status = os.waitpid(job["pid"], os.WNOHANG)
            if pid == 0 and time.perf_counter() - job["start"] < time_limit:
                continue
            if pid == 0:  # over the time limit: a hang; kill its process group
                os.killpg(job["pid"], 9)
                os.waitpid(job["pid"], 0)
                status = None
            running.remove(job)
            record(job["probe"], _finish(job, status, time_limit))
    return by_class


def format_table(by_class: dict[str, list], wall_s: float) -> str:
    total = sum(len(v) for v in by_class.values())
    rows = [f"{'outcome':18s} {'probes':>6s}"] + [f"{c:18s} {len(by_class[c]):6d}" for c in CLASSES]
    rows.append(f"{'total':18s} {total:6d}   (wall {wall_s:.0f} s)")
    bad = [(c, pr, d) for c in CLASSES if c not in PASSING for pr, d, _ in by_class[c]]
    if bad:
        rows.append("\nnot passing:")
        rows += [f"  [{c}] {pr.name}: {d}" for c, pr, d in bad]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    spawn = "--spawn" in args  # a new interpreter per probe instead of a fork of a preloaded one
    prefixes = [a for a in args if a != "--spawn"]
    probes = [pr for pr in PROBES if not prefixes or any(pr.name.startswith(x) for x in prefixes)]
    start = time.perf_counter()
    by_class = run_all(probes, fork=not spawn)
    print(format_table(by_class, time.perf_counter() - start))
    return 0 if all(not by_class[c] for c in CLASSES if c not in PASSING) else 1


if __name__ == "__main__":
    sys.exit(main())
