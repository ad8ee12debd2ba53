"""Helpers shared by the area CLI modules."""

from __future__ import annotations

import argparse

__all__ = ["add_area", "add_verb", "add_scheduler_option"]


def add_area(subparsers, name: str, help: str) -> argparse._SubParsersAction:
    """Add ``skysense <name>`` and return its verb sub-parsers."""
    area = subparsers.add_parser(name, help=help, description=help)
    area.set_defaults(_parser=area)
    return area.add_subparsers(dest="verb", metavar="VERB")


def add_verb(verbs, name: str, func, help: str) -> argparse.ArgumentParser:
    """Add ``skysense <area> <name>`` calling ``func(args)``."""
    parser = verbs.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func, _parser=parser)
    return parser


def add_scheduler_option(parser: argparse.ArgumentParser) -> None:
    """``--scheduler ADDRESS``: run on an existing Dask cluster instead of locally."""
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="Dask scheduler address (default: a local scheduler in this process)",
    )
