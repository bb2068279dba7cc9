"""The ``airflow-aurora-wake`` command: one entry point, one sub-command per job."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from airflow_aurora_wake import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser; each sub-command module registers its own parser."""
    parser = argparse.ArgumentParser(
        prog="airflow-aurora-wake",
        description="Wake sleeping Amazon Aurora clusters and wait until a real connection succeeds.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Sub-command modules import their heavy dependencies (moto, aiobotocore) only when run.
    from airflow_aurora_wake.core.cli import add_wait_parser
    from airflow_aurora_wake.demo import add_demo_parser
    from airflow_aurora_wake.emulator.cli import add_emulator_parser

    add_emulator_parser(subcommands)
    add_demo_parser(subcommands)
    add_wait_parser(subcommands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.handler(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
