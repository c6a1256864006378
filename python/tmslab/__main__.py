"""python -m tmslab SUBCOMMAND ...: the package's command line.

Each subcommand is one entry of SUBCOMMANDS: a name, a one-line help, and a function
`add(subparsers)` that registers its argparse sub-parser and sets `func` on it (called
with the parsed arguments, returning the exit code). Add a subcommand by writing its
module's `add_subcommand` and listing it here (the `report` helper adds `report`).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__
from . import report as _report


def _add_load(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("load", help="load a run directory and print its Dataset (a check that it loads)")
    p.add_argument("rundir")

    def run(args: argparse.Namespace) -> int:
        from .run import load

        print(load(args.rundir).ds)
        return 0

    p.set_defaults(func=run)


def _add_strip(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser("strip", help="clear a notebook's outputs in place (notebooks are committed without them)")
    p.add_argument("notebooks", nargs="+")

    def run(args: argparse.Namespace) -> int:
        import nbformat

        for path in args.notebooks:
            nb = nbformat.read(path, as_version=4)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
                    cell.execution_count = None
            nbformat.write(nb, path)
            print(f"tmslab: stripped {path}")
        return 0

    p.set_defaults(func=run)


# name -> function registering the sub-parser. New subcommands go here.
SUBCOMMANDS: dict[str, Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]] = {
    "load": _add_load,
    "report": _report.add_subcommand,
    "strip": _add_strip,
}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tmslab", description="tms from Python")
    ap.add_argument("--version", action="version", version=f"tmslab {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    for add in SUBCOMMANDS.values():
        add(sub)
    args = ap.parse_args(argv)
    if not getattr(args, "func", None):
        ap.print_help(sys.stderr)
        return 2
    from .run import RunError

    try:
        return int(args.func(args))
    except RunError as e:
        print(f"tmslab: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
