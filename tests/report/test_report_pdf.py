"""`report --format pdf` (issue 13 item 4): the same HTML laid out by WeasyPrint; the tests read
the PDF's text back (pypdf) and find the verdicts, the conclusions and the statement in it."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from estate_lab import EstateDb, build_estate_db
from report_lab import LabDb

pytest.importorskip("weasyprint", reason="needs WeasyPrint and Debian's pango (pip install weasyprint)")
pypdf = pytest.importorskip("pypdf")

CLI = [sys.executable, "-m", "camaudit"]
#: This module's loopback address (the report tests' block is 127.82.0.0/16).
TRAP_HOST = "127.82.9.1"


def pdf_text(data: bytes) -> str:
    """The PDF's text with whitespace folded (a layout breaks lines where it likes)."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    return " ".join(" ".join((page.extract_text() or "") for page in reader.pages).split())


def page_drawing(data: bytes) -> bytes:
    """The PDF's content streams: the drawing operators of every page."""
    return b"".join(page.get_contents().get_data() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def fill_of(colour: str) -> bytes:
    """The PDF fill operator of ``#rrggbb`` as WeasyPrint writes it (``0.184314 0.435294 0.623529 rg``)."""
    parts = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    return (" ".join(f"{p:.6f}".rstrip("0").rstrip(".") or "0" for p in parts) + " rg").encode()


def run(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=600)


@pytest.fixture(scope="module")
def estate_db(tmp_path_factory: pytest.TempPathFactory) -> EstateDb:
    return build_estate_db(tmp_path_factory.mktemp("estate-pdf") / "central.db")


def test_scan_report_pdf_carries_the_verdicts_and_the_statement(lab_db: LabDb, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    done = run("report", "--db", str(lab_db.path), "-o", str(out), "--fail-on", "none")
    assert done.returncode == 0, done.stderr.decode()
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    text = pdf_text(data)
    for word in ("OPEN", "INCONCLUSIVE", "CLOSED", "EXPOSED"):
        assert word in text, word
    assert "Statement" in text and "Claim: traffic from segment(s)" in text
    assert "Reproducibility" in text and "Findings over time" in text
    assert "Hik-Connect registerStatus=true" in text


def test_dutch_pdf(lab_db: LabDb, tmp_path: Path) -> None:
    out = tmp_path / "rapport.pdf"
    assert run("report", "--db", str(lab_db.path), "-o", str(out), "--lang", "nl", "--fail-on", "none").returncode == 0
    text = pdf_text(out.read_bytes())
    assert "Verklaring" in text and "Bewering:" in text and "Reproduceerbaarheid" in text


def test_estate_pdf_carries_each_sites_conclusion_and_statement(estate_db: EstateDb, tmp_path: Path) -> None:
    out = tmp_path / "estate.pdf"
    done = run("report", "--estate", "--db", str(estate_db.path), "-o", str(out), "--fail-on", "none")
    assert done.returncode == 0, done.stderr.decode()
    text = pdf_text(out.read_bytes())
    assert ("zwembad: CLOSED on 31 tested paths from 10.20.0.5, control passed 12 minutes earlier, "
            "0 of 2 devices report a cloud registration") in text
    assert "werf: INCONCLUSIVE: the cloud settings of 3 Dahua devices could not be read without credentials" in text
    assert "depot: the latest scan" in text and "was interrupted" in text
    assert "Claim: from the vantage 10.20.0.5, none of the 31 egress paths" in text
    # the charts are drawn (inline SVG, laid out by WeasyPrint): the estate's bars for axis are
    # the only thing of that colour on the page
    assert "Devices by maker per site" in text
    assert fill_of("#2f6f9f") in page_drawing(out.read_bytes())


def test_pdf_to_stdout_is_binary(lab_db: LabDb) -> None:
    done = run("report", "--db", str(lab_db.path), "--format", "pdf", "-o", "-", "--fail-on", "none")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.startswith(b"%PDF-") and b"%%EOF" in done.stdout[-1024:]


def test_laying_out_a_pdf_fetches_nothing(tmp_path: Path) -> None:
    """Even HTML that names a URL (as hostile text might, were it ever unescaped) makes no request."""
    from camaudit.report.pdf import html_to_pdf

    trap = socket.socket()
    trap.bind((TRAP_HOST, 0))
    trap.listen(4)
    trap.settimeout(0.2)
    port = trap.getsockname()[1]
    hits: list[str] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = trap.accept()
            except OSError:
                continue
            hits.append("connection")
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        url = f"http://{TRAP_HOST}:{port}"
        data = html_to_pdf(f'<html><head><link rel="stylesheet" href="{url}/s.css"><style>@import "{url}/i.css";'
                           f'body {{ background: url({url}/b.png) }}</style></head>'
                           f'<body><p>text</p><img src="{url}/x.png"></body></html>')
    finally:
        stop.set()
        thread.join(timeout=5)
        trap.close()
    assert data.startswith(b"%PDF-")
    assert hits == []
