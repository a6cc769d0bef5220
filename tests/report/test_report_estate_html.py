"""The estate report in headless Chromium, in English and Dutch (issue 13 item 11): it renders,
its conclusions and flags are there, and no request leaves the page (the recording loopback
proxy of test_report_html.py); and screenshots prove the summary renders: a PNG of the summary
area with enough colours in it, the verdicts' and charts' among them (not exact pixels)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from estate_lab import EstateDb, build_estate_db
from report_lab import LabDb
from test_report_html import CHROMIUM, _chromium_own_hosts, _Proxy, assert_nothing_external, dump_dom, proxy

from camaudit.report import write_estate_report, write_report
from camaudit.store import open_store

Image = pytest.importorskip("PIL.Image", reason="needs Pillow (WeasyPrint depends on it)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
__all__ = ["proxy"]  # the fixture, shared with test_report_html.py

#: The colours the summary is drawn with (report.css and charts.py): verdict pills and bars.
CLOSED_GREEN, INCONCLUSIVE_AMBER, COVERED_RED = (0x1F, 0x7A, 0x3A), (0xA1, 0x62, 0x07), (0xB4, 0x23, 0x18)


@pytest.fixture(scope="module")
def estate_db(tmp_path_factory: pytest.TempPathFactory) -> EstateDb:
    return build_estate_db(tmp_path_factory.mktemp("estate-html") / "central.db")


@pytest.fixture(scope="module", params=["en", "nl"])
def estate_page(request: pytest.FixtureRequest, estate_db: EstateDb, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp(f"estate-{request.param}")
    with open_store(estate_db.path) as store:
        path = write_estate_report(store, folder / "estate.html", lang=request.param).path
    return request.param, path


def test_the_estate_report_renders_with_a_conclusion_per_site(estate_page: tuple[str, Path], tmp_path: Path) -> None:
    lang, path = estate_page
    dom = dump_dom(path.as_uri(), tmp_path / "p")
    assert f'<html lang="{lang}"' in dom
    conclusions = dict(re.findall(r'<li data-site="(\w+)" data-verdict="(\w+)">', dom))
    assert conclusions == {"depot": "NONE", "werf": "INCONCLUSIVE", "zwembad": "CLOSED"}
    flags = re.findall(r'<li data-flag="(\w+)" data-site="(\w+)">', dom)
    assert ("flag_interrupted", "depot") in flags
    assert dom.index('id="estate-flags"') < dom.index('id="conclusions"')
    closed = ("zwembad: CLOSED on 31 tested paths from 10.20.0.5" if lang == "en"
              else "zwembad: CLOSED op 31 geteste routes vanaf 10.20.0.5")
    assert closed in dom
    assert ("Statement" if lang == "en" else "Verklaring") in dom
    assert len(re.findall(r'<section id="site-\d+" class="site"', dom)) == 3
    assert_nothing_external(path.read_text())


def test_no_request_leaves_the_estate_page(estate_page: tuple[str, Path], proxy: _Proxy, tmp_path: Path) -> None:
    own = _chromium_own_hosts(proxy, tmp_path)
    dump_dom(estate_page[1].as_uri(), tmp_path / "p", proxy)
    assert proxy.hosts() - own == set(), proxy.requests


def screenshot(url: str, out: Path, profile: Path) -> Path:
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-extensions", f"--user-data-dir={profile}", "--window-size=1280,1400",
            "--virtual-time-budget=3000", f"--screenshot={out}", url]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0 and out.exists(), done.stderr[-2000:]
    return out


def colours_near(image: object, wanted: tuple[int, int, int]) -> int:
    """How many pixels are within a small distance of ``wanted`` (anti-aliasing shifts edges)."""
    return sum(n for n, (r, g, b) in image.getcolors(1 << 20) if abs(r - wanted[0]) + abs(g - wanted[1]) + abs(b - wanted[2]) < 24)


def summary_area(png: Path) -> object:
    """The page below its header: the summary's cards, conclusions and charts come first there."""
    image = Image.open(png).convert("RGB")
    return image.crop((0, 300, image.width, image.height))


def test_screenshot_of_the_estate_summary(estate_db: EstateDb, tmp_path: Path) -> None:
    with open_store(estate_db.path) as store:
        page = write_estate_report(store, tmp_path / "estate.html").path
    area = summary_area(screenshot(page.as_uri(), tmp_path / "estate.png", tmp_path / "p"))
    assert len(area.getcolors(1 << 20)) > 200, "a summary with text, pills and charts has many colours"
    assert colours_near(area, CLOSED_GREEN) > 200 and colours_near(area, INCONCLUSIVE_AMBER) > 200
    # the control: a blank page of the same size fails the same check
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><body style='background:#f6f7f9'></body>")
    empty = summary_area(screenshot(blank.as_uri(), tmp_path / "blank.png", tmp_path / "p2"))
    assert len(empty.getcolors(1 << 20)) < 10


def test_screenshot_of_the_scan_report_summary(lab_db: LabDb, tmp_path: Path) -> None:
    db = tmp_path / "lab.db"
    with open_store(lab_db.path) as store:
        store.db.execute(f"vacuum into '{db}'")
    with open_store(db) as store:
        page = write_report(store, tmp_path / "report.html", lang="nl").path
    area = summary_area(screenshot(page.as_uri(), tmp_path / "scan.png", tmp_path / "p"))
    assert len(area.getcolors(1 << 20)) > 200
    assert colours_near(area, COVERED_RED) > 100, "the covered count and the makers' bars are drawn"


def test_no_request_leaves_the_dutch_scan_report(lab_db: LabDb, proxy: _Proxy, tmp_path: Path) -> None:
    """The scan report in Dutch, now with its statement and its findings-over-time chart."""
    db = tmp_path / "nl.db"
    with open_store(lab_db.path) as store:
        store.db.execute(f"vacuum into '{db}'")
    with open_store(db) as store:
        page = write_report(store, tmp_path / "rapport.html", lang="nl").path
    own = _chromium_own_hosts(proxy, tmp_path)
    dom = dump_dom(page.as_uri(), tmp_path / "p", proxy)
    assert proxy.hosts() - own == set(), proxy.requests
    assert 'id="statement"' in dom and "Bewering:" in dom and 'id="chart-history"' in dom
    assert_nothing_external(page.read_text())
