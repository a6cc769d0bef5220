"""`scan --json` is written host by host (issue 15: the whole document as one string was the
largest thing a 1,000-device scan held); the bytes are exactly those of json.dumps(indent=2)."""

from __future__ import annotations

import json

from camaudit.model import Host, Identity, Observation, ScanResult


def _result(hosts: int, *, egress: bool) -> ScanResult:
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
    return result


def test_streamed_json_is_byte_for_byte_the_whole_document() -> None:
    for hosts, egress in ((0, False), (1, False), (5, True), (12, False)):
        result = _result(hosts, egress=egress)
        chunks: list[str] = []
        result.write_json(chunks.append)
        assert "".join(chunks) == json.dumps(result.to_json(), indent=2, default=str)
        if hosts > 1:
            assert len(chunks) >= hosts, "written a host at a time, not as one string"
