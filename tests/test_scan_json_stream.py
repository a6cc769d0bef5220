"""`scan --json` is written host by host (issue 15: the whole document as one string was the
largest thing a 1,000-device scan held); the bytes are exactly those of json.dumps(indent=2)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from camaudit.model import Host, Identity, Observation, ScanResult
from camaudit.model.findings import Finding


def _result(hosts: int, *, egress: bool, findings: int = 0) -> ScanResult:
    result = ScanResult("s-1", "complete", "2026-12-04T01:00:00Z", "2026-12-04T01:01:00Z", ["127.0.0.0/24"],
                        notes=['a note with "hosts": [],\n  in it', "ünïcode ✓"], addresses_scanned=254,
                        egress={"verdict": "CLOSED"} if egress else None)
    for n in range(hosts, 0, -1):  # out of order: the output sorts by address
        address = f"127.0.0.{n}"
        result.hosts.append(Host(address, ports=[80, 554], mac="44:19:b6:00:00:01" if n % 2 else None,
                                 observations=[Observation(address, "http_server", "Server: x\r\n\"q\"", 80, "probe")],
                                 problems=["timed out"] if n == 3 else [],
                                 identity=Identity(vendor="hikvision", confidence=0.9) if n % 3 else None,
                                 settings={"nested": {"list": [1, 2, {"deep": None}]}, "empty": {}, "none": []}))
    for n in range(findings):
        result.findings.append(Finding(f"f{n}", "s-1", "covered-vendor", "high", f"127.0.0.{n + 1}",
                                       'A "covered" vendor', "line one\nline two",
                                       {"signatures": [{"id": "x", "value": "Server: y\r\n"}], "empty": []}))
    return result


def test_streamed_json_is_byte_for_byte_the_whole_document() -> None:
    for hosts, egress, findings in ((0, False, 0), (1, False, 0), (5, True, 3), (12, False, 7), (0, True, 2),
                                    (3, False, 1)):
        result = _result(hosts, egress=egress, findings=findings)
        chunks: list[str] = []
        result.write_json(chunks.append)
        assert "".join(chunks) == json.dumps(result.to_json(), indent=2, default=str)
        if hosts > 1:
            assert len(chunks) >= hosts, "written a host at a time, not as one string"
        if findings > 1:
            assert not any('"covered-vendor"' in c and c.count('"rule"') > 1 for c in chunks), \
                "written a finding at a time"


@pytest.mark.parametrize(("hosts", "egress", "findings"), [(0, False, 0), (1, True, 1), (6, False, 4)])
def test_hosts_read_as_they_are_written_give_the_same_document(hosts: int, egress: bool, findings: int) -> None:
    # The scan hands write_json an iterator over the store (camaudit.audit.scan_hosts): each
    # host is read only when it is written, and the bytes are those of the whole document.
    result = _result(hosts, egress=egress, findings=findings)
    recorded = sorted(result.hosts, key=lambda h: tuple(map(int, h.address.split("."))))
    result.hosts = []  # what a scan keeps: nothing of the hosts' evidence
    read: list[str] = []

    def hosts_from_store() -> Iterator[Host]:
        for host in recorded:
            read.append(host.address)
            yield host

    chunks: list[str] = []

    def write(chunk: str) -> None:
        chunks.append(chunk)
        read.append("written")

    result.write_json(write, hosts_from_store())
    assert "".join(chunks) == json.dumps(result.to_json(recorded), indent=2, default=str)
    if hosts > 1:
        first, second = read.index(recorded[0].address), read.index(recorded[1].address)
        assert "written" in read[first:second], "the second host is read after the first is written"
