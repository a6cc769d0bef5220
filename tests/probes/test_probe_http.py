"""The HTTP probe against well-behaved loopback servers with vendor-shaped answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import mmh3
from hostile import (
    DAHUA_HTTP_ROOT,
    FAVICON_BYTES,
    HIKVISION_APPWEBS_ROOT,
    HIKVISION_DNVRS_401,
    LOREX_DIGEST,
    ServerFarm,
    farm,
    hikvision_webs_redirect,
    http_response,
    http_site,
    next_address,
)

from camaudit import __version__
from camaudit.config import ProbeConfig
from camaudit.probes import ProbeReport, probe_host

__all__ = ["farm"]  # the fixture, imported for pytest

CONFIG = ProbeConfig(timeout=2.0)
ICON = http_response(200, FAVICON_BYTES, headers=[("Content-Type", "image/x-icon")])


def probe(address: str, ports: list[int], **kwargs: object) -> ProbeReport:
    return asyncio.run(probe_host(address, ports, kwargs.pop("config", CONFIG), **kwargs))  # type: ignore[arg-type]


def values(report: ProbeReport, kind: str, port: int | None = None) -> list[str]:
    return [o.value for o in report.observations if o.kind == kind and (port is None or o.port == port)]


def test_dahua_shape_title_body_and_favicon(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8080, http_site({"/": DAHUA_HTTP_ROOT, "/favicon.ico": ICON}, farm=farm))
    report = probe(address, [8080])
    assert report.problems == []
    head = DAHUA_HTTP_ROOT.split(b"\r\n\r\n")[0].decode("latin-1")
    assert values(report, "http_headers") == [head]
    assert "CONTENT-LENGTH: " in head and "Content-Length" not in head  # case kept as sent
    assert values(report, "http_title") == ["WEB SERVICE"]
    (body,) = values(report, "http_body")
    assert body.startswith('\ufeff<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"')
    assert values(report, "http_server") == []  # the Dahua shape carries no Server header
    assert values(report, "favicon_mmh3") == [str(mmh3.hash(base64.encodebytes(FAVICON_BYTES)))]
    assert values(report, "favicon_md5") == [hashlib.md5(FAVICON_BYTES).hexdigest()]
    assert {o.source for o in report.observations} == {"http"}
    assert {o.port for o in report.observations} == {8080}
    assert all(o.address == address for o in report.observations)
    requests = [r for a, p, r in farm.requests if a == address]
    assert [r.split(b" ")[1] for r in requests] == [b"/", b"/favicon.ico"]
    assert all(f"User-Agent: camaudit/{__version__}\r\n".encode() in r for r in requests)
    assert all(b"Authorization" not in r for r in requests)


def test_hikvision_appwebs_and_index_page_favicon_is_not_hashed(farm: ServerFarm) -> None:
    address = next_address()
    # Many devices answer every path with their index page: that is not a favicon.
    farm.serve(address, 8080, http_site({"/": HIKVISION_APPWEBS_ROOT}, default=HIKVISION_APPWEBS_ROOT))
    report = probe(address, [8080])
    assert values(report, "http_server") == ["App-webs/"]
    assert values(report, "http_title") == ["Login & Live View"]
    assert "Hikvision Digital Technology" in values(report, "http_body")[0]
    assert values(report, "favicon_mmh3") == [] and values(report, "favicon_md5") == []
    assert report.problems == []


def test_401_challenges_recorded_verbatim(farm: ServerFarm) -> None:
    address = next_address()
    lorex = http_response(
        401,
        b"",
        reason="Unauthorized",
        headers=[("WWW-Authenticate", LOREX_DIGEST), ("WWW-Authenticate", 'Basic realm="hikvision"')],
    )
    farm.serve(address, 8080, http_site({"/": HIKVISION_DNVRS_401}))
    farm.serve(address, 8081, http_site({"/": lorex}))
    report = probe(address, [8080, 8081], protocols={8081: "http"})
    assert values(report, "http_server", 8080) == ["DNVRS-Webs"]
    assert values(report, "http_www_authenticate", 8080) == ['Basic realm="hikvision"']
    assert values(report, "http_www_authenticate", 8081) == [LOREX_DIGEST, 'Basic realm="hikvision"']
    assert values(report, "http_headers", 8081)[0].startswith("HTTP/1.1 401 Unauthorized\r\n")
    assert report.problems == []  # a 401 is evidence, not a failure


def test_same_host_redirect_followed_once_first_headers_kept(farm: ServerFarm) -> None:
    address = next_address()
    site = {
        "/": hikvision_webs_redirect(f"{address}:8080"),
        "/index.asp": HIKVISION_APPWEBS_ROOT,
    }
    farm.serve(address, 8080, http_site(site, farm=farm))
    report = probe(address, [8080])
    (headers,) = values(report, "http_headers")
    assert headers.startswith("HTTP/1.0 302 Redirect\r\nServer: Webs\r\n")
    assert values(report, "http_server") == ["Webs"]  # from the first response
    assert values(report, "http_title") == ["Login & Live View"]  # from the page reached
    paths = [r.split(b" ")[1] for a, _, r in farm.requests if a == address]
    assert paths == [b"/", b"/index.asp", b"/favicon.ico"]


def test_redirect_to_another_host_or_port_is_not_followed(farm: ServerFarm) -> None:
    address, elsewhere = next_address(), next_address()
    farm.serve(address, 8080, http_site({"/": hikvision_webs_redirect(f"{elsewhere}:8080")}))
    farm.serve(address, 8081, http_site({"/": hikvision_webs_redirect(f"{address}:8082")}))
    farm.serve(elsewhere, 8080, http_site({"/": HIKVISION_APPWEBS_ROOT}))
    farm.serve(address, 8082, http_site({"/": HIKVISION_APPWEBS_ROOT}))
    report = probe(address, [8080, 8081], protocols={8081: "http"})
    assert values(report, "http_server", 8080) == ["Webs"]
    assert values(report, "http_server", 8081) == ["Webs"]
    assert values(report, "http_title") == []
    assert farm.accepted.get((elsewhere, 8080), 0) == 0
    assert farm.accepted.get((address, 8082), 0) == 0


def test_chunked_page_and_bounded_body(farm: ServerFarm) -> None:
    address = next_address()
    page = b"<html><title>Chunked Camera</title>" + b"x" * 50_000 + b"</html>"
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(page[i : i + 4000]), page[i : i + 4000]) for i in range(0, len(page), 4000))
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/html\r\n\r\n" + chunks + b"0\r\n\r\n"
    farm.serve(address, 8080, http_site({"/": chunked}))
    report = probe(address, [8080], config=ProbeConfig(timeout=2.0, body_bytes=100))
    assert values(report, "http_title") == ["Chunked Camera"]
    (body,) = values(report, "http_body")
    assert len(body) == 100 and body.startswith("<html><title>Chunked Camera</title>xxx")
    assert "4000\r\n" not in body and "fa0" not in body  # de-chunked
    assert report.problems == []


def test_body_until_close_without_length(farm: ServerFarm) -> None:
    address = next_address()
    raw = b"HTTP/1.0 200 OK\r\nServer: Boa/0.94.14rc21\r\n\r\n<title>Boa Cam</title>"  # corpus recog-boa-1
    farm.serve(address, 8080, http_site({"/": raw}))
    report = probe(address, [8080])
    assert values(report, "http_server") == ["Boa/0.94.14rc21"]
    assert values(report, "http_title") == ["Boa Cam"]
    assert report.problems == []


def test_empty_or_missing_favicon_records_nothing(farm: ServerFarm) -> None:
    address = next_address()
    farm.serve(address, 8080, http_site({"/": HIKVISION_APPWEBS_ROOT}))  # favicon: 404
    farm.serve(address, 8081, http_site({"/": HIKVISION_APPWEBS_ROOT, "/favicon.ico": http_response(200, b"")}))
    report = probe(address, [8080, 8081], protocols={8081: "http"})
    assert values(report, "favicon_mmh3") == [] and values(report, "favicon_md5") == []
    assert report.problems == []


def test_oversized_favicon_is_not_hashed_and_said(farm: ServerFarm) -> None:
    address = next_address()
    big = http_response(200, b"\x00\x00\x01\x00" + b"\x01" * 200_000, headers=[("Content-Type", "image/x-icon")])
    farm.serve(address, 8080, http_site({"/": HIKVISION_APPWEBS_ROOT, "/favicon.ico": big}))
    report = probe(address, [8080])
    assert values(report, "favicon_mmh3") == []
    assert report.problems == ["tcp/8080: /favicon.ico: incomplete or over 65536 bytes, not hashed"]
