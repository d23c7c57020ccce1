"""The ``workbench`` command line: headless studies written as HTML reports, and the symbolic check table.

    workbench report ntk --out ntk.html              # figures + numbers + parameters + device, one HTML file
    workbench report hessian --batch-sizes 8,32,128 --out hessian.html
    workbench report hessian --model examples.flax_cnn:make --data digits --n 256 --out r.html
    workbench check                                  # symbolic derivations vs numerics, as a table
    workbench reproduce yang_hu_2021_mup --fast      # a paper's claim measured, with a verdict (--all: every entry)
    python -m workbench --help

Each ``report`` runs the same study functions that the notebook panels call (with a terminal progress bar)
and writes the file atomically (no partial file on failure). Every option is parsed by one validated path
(``workbench.reports``: bounded integers, seeds in [0, 2**32 - 1], finite numbers). Bad input (unknown study,
a non-positive size, a seed out of range, an output path that cannot be written) and any failure of a study
print one line ``workbench: error: ...`` and exit with status 2 (``WORKBENCH_DEBUG=1`` re-raises instead).
``--fast`` uses the small sizes of fast mode (as ``WORKBENCH_FAST=1`` does).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from collections.abc import Sequence

from workbench.reports import STUDIES, check_output_path, load_study, seed

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"workbench: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows ``(default: X)`` where a default means something (not for flags and empty options)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, True, argparse.SUPPRESS) or not action.option_strings:
            return text
        return text + " (default: %(default)s)"


def _add_common(p: argparse.ArgumentParser, precision: str = "float32") -> None:
    p.add_argument("--precision", choices=("float32", "float64"), default=precision,
                   help="JAX float width (float64 for verification-grade numbers)")
    p.add_argument("--fast", action="store_true",
                   help="small sizes, as WORKBENCH_FAST=1 (the defaults below follow the mode at start-up)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def _add_model_options(p: argparse.ArgumentParser, study: str) -> None:
    """``--model module:factory --data NAME --n N`` on the studies that run on your own model."""
    from workbench.reports import model as model_report

    if study in model_report.STUDIES:
        model_report.add_model_arguments(p)


def build_parser() -> argparse.ArgumentParser:
    """The full parser: ``report <study>`` (one sub-parser per study) and ``check``."""
    parser = _Parser(prog="workbench", formatter_class=_Formatter,
                     description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", metavar="{report,check,reproduce}", parser_class=_Parser)
    sub.required = True

    rep = sub.add_parser("report", help="run a study headless and write an HTML report", formatter_class=_Formatter,
                         description="Run a study with the functions the notebook panels call and write one "
                                     "standalone HTML file: figures, a table of the numbers, the parameters and "
                                     "the device report. Studies: "
                                     + "; ".join(f"{k}: {v[1]}" for k, v in STUDIES.items()) + ".")
    studies = rep.add_subparsers(dest="study", metavar="{" + ",".join(STUDIES) + "}", parser_class=_Parser)
    studies.required = True
    for name, (_module, summary) in STUDIES.items():
        module = load_study(name)
        sp = studies.add_parser(name, help=summary, description=getattr(module, "DESCRIPTION", summary),
                                formatter_class=_Formatter)
        module.add_arguments(sp)
        _add_model_options(sp, name)
        _add_common(sp, getattr(module, "DEFAULT_PRECISION", "float32"))
        sp.add_argument("--out", required=True, metavar="PATH.html",
                        help="where to write the report (written atomically: no partial file on failure)")

    chk = sub.add_parser("check", help="run the symbolic-vs-numeric verification table", formatter_class=_Formatter,
                         description="Run every symbolic derivation's closed form against its numerical "
                                     "counterparts (Monte Carlo, quadrature, dense linear algebra, ODE solves, "
                                     "trained networks) and print the table; exit status 1 if any check fails.")
    chk.add_argument("names", nargs="*", metavar="NAME", help="derivations to check (default: all)")
    chk.add_argument("--first-method-only", action="store_true",
                     help="one numerical counterpart per derivation instead of all")
    chk.add_argument("--device", default=None, help="JAX platform to run on (cpu, gpu); default: the first device")
    chk.add_argument("--out", default=None, metavar="PATH.html", help="also write the table as an HTML report")
    _add_common(chk, "float64")
    _add_reproduce(sub)
    return parser


def _add_reproduce(sub) -> None:
    """``workbench reproduce NAME | --all [--fast] [--key K] [--out r.html]`` (entries of workbench.papers)."""
    from workbench import papers

    rp = sub.add_parser("reproduce", help="reproduce a paper's claim with a check and a verdict",
                        formatter_class=_Formatter,
                        description="Run a paper reproduction (workbench.papers) and print its checks and verdict; "
                                    "exit status 0 only if every entry run passed. Entries: "
                                    + ", ".join(papers.names()) + ".")
    rp.add_argument("name", nargs="?", metavar="NAME", help="the entry to run (see the list above)")
    rp.add_argument("--all", action="store_true", help="run every entry and print the verdict table")
    rp.add_argument("--fast", action="store_true", help="the small sizes of fast mode (seconds per entry)")
    rp.add_argument("--key", type=seed, default=0, help="integer seed in [0, 2**32 - 1]")
    rp.add_argument("--out", default=None, metavar="PATH.html", help="also write an HTML report")
    rp.set_defaults(precision="float64")


def _run_reproduce(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workbench import papers
    from workbench.reports import write_report
    from workbench.reports.papers import build_report

    if bool(args.all) == bool(args.name):
        raise ValueError("give one entry NAME or --all (entries: " + ", ".join(papers.names()) + ")")
    if args.name:
        papers.load(args.name)  # an unknown name fails here, before any work
    out = check_output_path(args.out) if args.out else None
    results = []
    for name in (papers.names() if args.all else [args.name]):
        rep = papers.reproduce(name, fast=args.fast, key=args.key)
        results.append(rep)
        print(rep.summary() if not args.all else f"{name}: {'passed' if rep.passed else 'FAILED'} "
              f"({rep.elapsed_s:.1f} s)", flush=True)
    if args.all:
        print(papers.verdict_table(results))
    if out is not None:
        report = build_report(results)
        report.command = "workbench " + " ".join(shlex.quote(a) for a in argv)
        write_report(report, out)
        print(f"wrote {out}")
    return 0 if all(r.passed for r in results) else 1


def _run_report(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workbench.reports import write_report

    out = check_output_path(args.out)  # fail before computing, not after
    module = load_study(args.study)
    if getattr(args, "model", None):  # your own model (workbench.reports.model)
        module = load_study("noise")
    start = time.perf_counter()
    report = module.build(args)
    report.elapsed_s = time.perf_counter() - start
    report.command = "workbench " + " ".join(shlex.quote(a) for a in argv)
    write_report(report, out)
    print(f"wrote {out} ({len(report.figures)} figure(s), {len(report.tables)} table(s), "
          f"{report.elapsed_s:.1f} s; {report.device})")
    return 0


def _run_check(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from workbench.reports import symbolic as symbolic_report
    from workbench.reports import write_report

    out = check_output_path(args.out) if args.out else None
    start = time.perf_counter()
    table = symbolic_report.run_checks(args.names or None, all_methods=not args.first_method_only,
                                       device=args.device, progress=args.progress)
    print(table.format())
    if out is not None:
        report = symbolic_report.report_from_table(table, args)
        report.elapsed_s = time.perf_counter() - start
        report.command = "workbench " + " ".join(shlex.quote(a) for a in argv)
        write_report(report, out)
        print(f"wrote {out}")
    return 0 if table.all_passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script and of ``python -m workbench``."""
    from workbench import config

    argv = list(sys.argv[1:] if argv is None else argv)
    old_fast = os.environ.get("WORKBENCH_FAST")
    try:
        if "--fast" in argv:  # before building the parser: the option defaults follow fast mode
            os.environ["WORKBENCH_FAST"] = "1"
        args = build_parser().parse_args(argv)
        # the float width is restored afterwards: main() may run inside a larger process (tests, notebooks)
        with config.precision(args.precision):
            if args.command == "report":
                return _run_report(args, argv)
            if args.command == "reproduce":
                return _run_reproduce(args, argv)
            return _run_check(args, argv)
    except (ValueError, TypeError, OSError) as exc:
        # bad input found by the study's own validation, or an output path that cannot be written
        message = " ".join(str(exc).split())
        print(f"workbench: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("workbench: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # any other study failure: one line, no partial file (reports write atomically)
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        message = " ".join(str(exc).split()) or "(no message)"
        print(f"workbench: error: {type(exc).__name__}: {message} (set WORKBENCH_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if old_fast is None:
            os.environ.pop("WORKBENCH_FAST", None)
        else:
            os.environ["WORKBENCH_FAST"] = old_fast


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
