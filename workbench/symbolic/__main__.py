"""``python -m workbench.symbolic``: run every symbolic derivation's checks and print the table.

Options: ``--names a b`` (subset), ``--device gpu``, ``--precision highest|high|default`` (matmul),
``--float32`` (default float64, the verification width), ``--fast`` (small sizes), ``--first-method-only``.
Exit status 1 if any check fails.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.symbolic", description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="*", default=None, help="derivations to check (default: all)")
    parser.add_argument("--device", default=None, help="jax platform to run on, e.g. cpu or gpu (default: jax.devices()[0])")
    parser.add_argument("--precision", default="highest", choices=("default", "high", "highest"),
                        help="JAX matmul precision (highest disables TF32)")
    parser.add_argument("--float32", action="store_true", help="run in float32 instead of float64")
    parser.add_argument("--fast", action="store_true", help="small sizes (sets WORKBENCH_FAST=1)")
    parser.add_argument("--first-method-only", action="store_true", help="one numerical counterpart per derivation")
    parser.add_argument("--list", action="store_true", help="list the derivations and their methods, then exit")
    args = parser.parse_args(argv)
    if args.fast:
        os.environ["WORKBENCH_FAST"] = "1"
    from workbench import config, symbolic

    if args.list:
        for name, d in symbolic.REGISTRY.items():
            methods = ", ".join(m.name + ("" if m.available() else " (unavailable)") for m in d.methods)
            print(f"{name}: {d.title} [{methods}]")
        return 0
    config.set_precision("float32" if args.float32 else "float64")
    table = symbolic.check_all(args.names, all_methods=not args.first_method_only, device=args.device,
                               precision=args.precision, progress=sys.stderr.isatty())
    print(table.format())
    for r in table:
        if not r.passed:
            print(r.summary())
    return 0 if table.all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
