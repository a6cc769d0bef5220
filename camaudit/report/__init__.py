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

FORMATS = ("html", "md", "json", "csv", "pdf")
_SUFFIXES = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".json": "json", ".csv": "csv",
             ".pdf": "pdf"}


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
    """A report document (a scan's, or the estate's: ``kind: "estate"``) in a text format."""
    if doc.get("kind") == "estate":
        return _render_estate(doc, fmt)
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
    if fmt == "pdf":
        raise UsageError("a PDF is binary: use render_bytes")
    raise UsageError(f"no report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _render_estate(doc: dict[str, Any], fmt: str) -> str:
    from .estate_render import render_estate_html, render_estate_markdown

    if fmt == "html":
        return render_estate_html(doc)
    if fmt == "md":
        return render_estate_markdown(doc)
    if fmt == "json":
        from .json_report import render_json

        return render_json(doc)
    raise UsageError(f"the estate report is written as html, md, json or pdf, not {fmt}")


def render_bytes(doc: dict[str, Any], fmt: str) -> bytes:
    """A report document in ``fmt`` as bytes: the PDF lays out the HTML; the rest is UTF-8 text."""
    if fmt == "pdf":
        from .pdf import html_to_pdf

        return html_to_pdf(render(doc, "html"))
    return render(doc, fmt).encode("utf-8")


def write_atomically(path: str | Path, text: str | bytes) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so a reader
    (a mail job, a web server) never sees half a report."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UsageError(f"the folder {folder} does not exist")
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        data = text.encode("utf-8") if isinstance(text, str) else text
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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
    return WrittenReport(write_atomically(path, render_bytes(doc, fmt)), doc)


def write_estate_report(store: Store, path: str | Path, *, fmt: str | None = None, policy: Policy | None = None,
                        lang: str = "en", max_age: float | None = None) -> WrittenReport:
    """Write the estate report (every site of the store) to ``path``."""
    from .estate import build_estate

    fmt = format_for(path, fmt)
    if fmt == "csv":
        raise UsageError("the estate report is written as html, md, json or pdf, not csv")
    doc = build_estate(store, policy=policy, lang=lang, max_age=max_age)
    return WrittenReport(write_atomically(path, render_bytes(doc, fmt)), doc)


def write_demo_report(db_path: str | Path, html_path: str | Path | None = None, *, lang: str = "en") -> Path:
    """The HTML report of the latest scan in ``db_path``, written to ``html_path`` (default:
    beside the database, ``<db>.html``). ``camaudit demo`` ends with this."""
    db_path = Path(db_path)
    target = Path(html_path) if html_path is not None else db_path.with_suffix(".html")
    with open_store(db_path, create=False) as store:
        return write_report(store, target, fmt="html", lang=lang).path
