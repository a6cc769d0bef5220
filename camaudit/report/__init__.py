"""Reports, written from the store alone (DESIGN.md section 1, "report"): HTML (one
self-contained file), Markdown, JSON and CSV, in English or Dutch; and the exports
(:mod:`.inventory`, :mod:`.ocsf`, :mod:`.datasette`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..assess import Finding
from ..errors import OutputError, UsageError
from ..policy import Policy
from ..store import Store, open_store

FORMATS = ("html", "md", "json", "csv")
_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json", ".csv": "csv"}


@dataclass(frozen=True, slots=True)
class WrittenReport:
    path: Path
    document: dict[str, Any]

    @property
    def findings(self) -> list[Finding]:
        return [Finding(**f) for f in self.document["findings"]]


def format_for(path: str | Path, fmt: str | None) -> str:
    """The format asked for, else the one the file name implies."""
    if fmt:
        if fmt not in FORMATS:
            raise UsageError(f"no report format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    guessed = _SUFFIXES.get(Path(path).suffix.lower())
    if guessed is None:
        raise UsageError(f"cannot tell the report format from {path}; add --format {'|'.join(FORMATS)}")
    return guessed


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "html":
        from .html import render_html

        return render_html(doc)
    if fmt == "md":
        from .markdown import render_markdown

        return render_markdown(doc)
    if fmt == "json":
        from .json_report import render_json

        return render_json(doc)
    if fmt == "csv":
        from .csv_report import render_csv

        return render_csv(doc)
    raise UsageError(f"no report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def write_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so a reader
    (a mail job, a web server) never sees half a report."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"the folder {folder} does not exist")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO):
            # Not a mistake the user can fix by naming another file: the run failed (exit 3).
            raise OutputError(f"cannot write {path}: {exc.strerror}; nothing was written") from None
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        if tmp is not None:  # never leave half a report behind
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return path


def write_report(
    store: Store,
    path: str | Path,
    *,
    fmt: str | None = None,
    scan_ref: str = "latest",
    policy: Policy | None = None,
    lang: str = "en",
) -> WrittenReport:
    """Assess the scan, then write its report to ``path``."""
    from .data import build_report

    fmt = format_for(path, fmt)
    doc = build_report(store, scan_ref, policy=policy, lang=lang)
    return WrittenReport(write_atomically(path, render(doc, fmt)), doc)


def write_demo_report(db_path: str | Path, html_path: str | Path | None = None, *, lang: str = "en") -> Path:
    """The HTML report of the latest scan in ``db_path``, written to ``html_path`` (default:
    beside the database, ``<db>.html``). ``camaudit demo`` ends with this."""
    db_path = Path(db_path)
    target = Path(html_path) if html_path is not None else db_path.with_suffix(".html")
    with open_store(db_path, create=False) as store:
        return write_report(store, target, fmt="html", lang=lang).path
