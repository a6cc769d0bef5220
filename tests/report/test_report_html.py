"""The HTML report in headless Chromium (Debian's `chromium` package; CI installs it): it
renders, its numbers match the store, its table filters and sorts, hostile device text stays
text, and no request leaves the page (a loopback proxy that Chromium must use counts them)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest
from report_lab import LabDb, write_scan

from camaudit.model import Identity, SignatureHit
from camaudit.report import write_report
from camaudit.store import open_store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")

#: This test module's own loopback address (the report tests' block is 127.82.0.0/16).
PROXY_HOST = "127.82.7.1"


#: Chromium's own calls home (time, component updates) go to these, whatever the flags.
_CHROMIUM_HOME = (".google.com", ".googleapis.com", ".gstatic.com", ".gvt1.com", ".googleusercontent.com")


class _Proxy:
    """A loopback HTTP proxy that answers nothing and records every request line."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PROXY_HOST, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    first = "(no request line)"
                self.requests.append(first)

    def hosts(self) -> set[str]:
        """The hosts asked for (``GET http://host/...``, ``CONNECT host:443``), less Google's."""
        found = set()
        for line in self.requests:
            match = re.match(r"[A-Z]+ (?:https?://)?([^/:\s]+)", line)
            found.add(match.group(1) if match else line)
        return {h for h in found if not h.endswith(_CHROMIUM_HOME)}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


@pytest.fixture()
def proxy() -> _Proxy:
    p = _Proxy()
    yield p
    p.close()


def dump_dom(url: str, profile: Path, proxy: _Proxy | None = None) -> str:
    argv = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", "--virtual-time-budget=3000",
    ]  # fmt: skip
    if proxy is not None:
        argv += [f"--proxy-server=http://{PROXY_HOST}:{proxy.port}", "--proxy-bypass-list=<-loopback>"]
    result = subprocess.run([*argv, "--dump-dom", url], capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.style_text = ""
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.style_text += data


def elements(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def assert_nothing_external(html: str) -> None:
    """No element refers to another host or file: no src/href/action/etc. to http(s) or //,
    no url() in styles; the only links are in-page anchors."""
    parsed = elements(html)
    for tag, attrs in parsed.elements:
        assert tag not in ("img", "iframe", "link", "object", "embed", "source", "video", "audio", "base", "form"), tag
        for name, value in attrs.items():
            if name in ("src", "href", "action", "poster", "data", "srcset", "xlink:href", "formaction"):
                assert value.startswith("#"), f"<{tag} {name}={value!r}>"
            assert not re.search(r"url\(", value, re.I) or name == "content", f"<{tag} {name}={value!r}>"
    assert not re.search(r"url\(|@import", parsed.style_text, re.I)


def stat(dom: str, key: str) -> int:
    match = re.search(rf'data-stat="{re.escape(key)}">(\d+)<', dom)
    assert match, f"no {key} in the rendered page"
    return int(match.group(1))


@pytest.fixture(scope="module")
def rendered(lab_db: LabDb, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, Path]:
    folder = tmp_path_factory.mktemp("html")
    db = folder / "lab.db"
    with open_store(lab_db.path) as store:
        store.db.execute(f"vacuum into '{db}'")
    with open_store(db) as store:
        report = write_report(store, folder / "report.html", scan_ref=lab_db.latest)
    return report.path, dump_dom(report.path.as_uri(), folder / "profile"), db


def test_it_renders_and_its_numbers_match_the_store(rendered: tuple[Path, str, Path]) -> None:
    path, dom, db = rendered
    assert 'data-ready="1"' in dom, "the table script ran"
    with open_store(db) as store:
        (scan_id,) = store.db.execute("select id from scans order by started_at desc limit 1").fetchone()
        hosts = store.db.execute("select count(*) from hosts where scan_id = ?", [scan_id]).fetchone()[0]
        identified = store.db.execute("select count(*) from identities where scan_id = ? and vendor != 'unknown'", [scan_id]).fetchone()[0]
        covered = store.db.execute("select count(*) from identities where scan_id = ? and covered = 1", [scan_id]).fetchone()[0]
        by_severity = dict(store.db.execute("select severity, count(*) from findings where scan_id = ? group by severity", [scan_id]).fetchall())
        by_maker = dict(store.db.execute("select vendor, count(*) from identities where scan_id = ? group by vendor", [scan_id]).fetchall())
        register = dict(store.db.execute("select status, count(*) from reconciliation where scan_id = ? group by status", [scan_id]).fetchall())
    assert scan_id in dom
    assert (stat(dom, "hosts"), stat(dom, "identified"), stat(dom, "covered")) == (hosts, identified, covered) == (7, 6, 5)
    for severity in ("critical", "high", "medium", "low", "info"):
        assert stat(dom, f"findings-{severity}") == by_severity.get(severity, 0)
    assert sum(by_severity.values()) == int(re.search(r'id="finding-count">(\d+)<', dom).group(1)) == len(re.findall(r"<tr data-severity=", dom))
    bars = dict(re.findall(r'<g class="bar" data-label="([^"]+)" data-value="(\d+)"', dom.split('id="chart-brands"')[0].split('id="chart-makers"')[1]))
    assert {k: int(v) for k, v in bars.items()} == by_maker
    assert stat(dom, "register-matched") == register["matched"] and stat(dom, "register-missing") == register["missing"]
    assert len(re.findall(r'<tr id="row-\d+"', dom)) == hosts
    segment = re.search(r'<tr data-segment="10.20.0.0/24" data-verdict="(\w+)"', dom)
    assert segment and segment.group(1) == "INCONCLUSIVE"
    assert "positive control, IPv6 path" in dom, "the segment's missing coverage is shown"
    assert 'id="dev-5"' in dom and "Hik-Connect registerStatus=true" in dom, "evidence per device"
    assert_nothing_external(path.read_text())


def test_the_device_table_filters_and_sorts(rendered: tuple[Path, str, Path], tmp_path: Path) -> None:
    path = rendered[0]
    dom = dump_dom(path.as_uri() + "#maker=dahua", tmp_path / "p1")
    visible = re.findall(r'<tr id="row-\d+" data-address="([^"]+)" data-maker="(\w+)"[^>]*?(hidden="")?>', dom)
    assert sorted(a for a, m, h in visible if not h) == ["10.20.0.12", "10.20.0.13"]
    assert re.search(r'id="shown-count">2<', dom)
    dom = dump_dom(path.as_uri() + "#q=ezviz", tmp_path / "p2")
    assert re.search(r'id="shown-count">1<', dom)
    dom = dump_dom(path.as_uri() + "#sort=-1", tmp_path / "p3")
    order = re.findall(r'<tr id="row-\d+" data-address="([^"]+)"', dom)
    assert order[0] == "10.30.0.5" and order[-1] == "10.20.0.11", "addresses sort numerically, descending"


def _chromium_own_hosts(proxy: _Proxy, tmp_path: Path) -> set[str]:
    """Beyond Google's hosts, whatever else Chromium calls on its own, learnt from an empty
    page, so that only what a page adds counts against it."""
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><p>nothing</p>")
    dump_dom(blank.as_uri(), tmp_path / "p0", proxy)
    own = proxy.hosts()
    proxy.requests.clear()
    return own


def test_no_request_leaves_the_page(rendered: tuple[Path, str, Path], proxy: _Proxy, tmp_path: Path) -> None:
    own = _chromium_own_hosts(proxy, tmp_path)
    # The control: a page that does refer to another host is seen by the proxy.
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><img src="http://camaudit-test.invalid/pixel.png">')
    dump_dom(control.as_uri(), tmp_path / "p1", proxy)
    assert "camaudit-test.invalid" in proxy.hosts() - own, proxy.requests
    proxy.requests.clear()
    dump_dom(rendered[0].as_uri(), tmp_path / "p2", proxy)
    assert proxy.hosts() - own == set(), proxy.requests


def test_hostile_device_text_stays_text(tmp_path: Path, proxy: _Proxy) -> None:
    evil_img = '<img src="http://camaudit-test.invalid/evil.png">'
    evil_script = "</script><script>document.title='pwned'</script>"
    with open_store(tmp_path / "evil.db") as store:
        from report_lab import LabDevice

        device = LabDevice(
            "10.40.0.1", "08:ed:ed:00:40:01",
            Identity(vendor="dahua", model=evil_img, firmware="=HYPERLINK(\"http://x\")", covered=True,
                     signatures=[SignatureHit("sig", "http_title", evil_script, 80)]),
            (("http_title", evil_script, 80), ("http_server", "x\" onmouseover=\"alert(1)", 80)), (80,),
        )  # fmt: skip
        write_scan(store, [device], [], ["10.40.0.0/24"])
        report = write_report(store, tmp_path / "evil.html")
    html = report.path.read_text()
    assert "&lt;img src=" in html and evil_img not in html
    own = _chromium_own_hosts(proxy, tmp_path)
    dom = dump_dom(report.path.as_uri(), tmp_path / "p", proxy)
    assert proxy.hosts() - own == set(), proxy.requests
    assert "pwned" not in re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    parsed = elements(dom)
    assert not any(tag == "img" for tag, _ in parsed.elements)
    assert not any("onmouseover" in attrs for _, attrs in parsed.elements)
    assert sum(tag == "script" for tag, _ in parsed.elements) == 1


def test_dutch(lab_db: LabDb, tmp_path: Path) -> None:
    db = tmp_path / "nl.db"
    with open_store(lab_db.path) as store:
        store.db.execute(f"vacuum into '{db}'")
    with open_store(db) as store:
        report = write_report(store, tmp_path / "rapport.html", lang="nl")
    dom = dump_dom(report.path.as_uri(), tmp_path / "p")
    assert '<html lang="nl"' in dom and "Auditrapport camera's" in dom
    assert "Apparaat van een gelijste fabrikant met internetverbinding" in dom, "finding titles are Dutch too"
    assert "Samenvatting" in dom and "Summary" not in dom
    assert stat(dom, "hosts") == 7
