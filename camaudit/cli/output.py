"""Shared output helpers for commands: JSON on stdout, progress on stderr (terminal only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from ..config import STALE_AFTER

if TYPE_CHECKING:
    from ..store import Store

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout and nothing else there.")
DB_OPTION = click.option(
    "--db",
    "db_path",
    default="camaudit.db",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The SQLite evidence store.",
)


def open_store(path: str, *, create: bool = True, stale_after: float = STALE_AFTER) -> Store:
    """Open the evidence store for a command. A killed scan that this open marks interrupted is
    identified and assessed on what it stored, so that whatever the command shows next says
    what that scan saw (DESIGN.md section 6)."""
    from ..audit import finalise_stale_scans
    from ..store import open_store as open_evidence_store

    store = open_evidence_store(path, create=create, stale_after=stale_after)
    if store.marked_stale:
        finalise_stale_scans(store)
    return store


def print_json(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress bar on stderr, only when stderr is a terminal and ``enabled``."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total or None)
            bar.update(tasks[stage], completed=done, total=total or None)

        yield update


SITE_OPTION = click.option(
    "--site", "site", default=None, metavar="NAME",
    help="The site (its own address space in the store; default: the scan's config, else 'default').",
)


def resolve_site(site: str | None) -> str:
    """The site named with --site (checked), else ``default``."""
    from ..config import site_name
    from ..model import DEFAULT_SITE

    return site_name(site) if site is not None else DEFAULT_SITE
