"""`camaudit identify` as the DESIGN.md section 4 contract says, run as a real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from camaudit.fingerprint.nmap_xml import parse, service_fingerprint_responses

DATA = Path(__file__).resolve().parents[1] / "data"
CONTRACT = ["id", "vendor", "brand", "device_type", "model", "firmware", "serial", "confidence", "covered",
            "advisories", "signatures"]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "camaudit", "identify", *args], input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_json_lines_in_order_with_errors_in_place() -> None:
    lines = [
        json.dumps({"id": "cam1", "observations": [{"kind": "http_server", "value": "App-webs/", "port": 80}]}),
        "{not json",
        json.dumps({"id": "cam2", "observations": [{"kind": "dhip", "value": '{"method":"client.notifyDevInfo",'
                    '"params":{"deviceInfo":{"DeviceClass":"NVR","DeviceType":"DHI-NVR5464","SerialNo":"3C06520PAN00001"}}}'}]}),
        json.dumps({"id": "cam3", "observations": "nope"}),
        "",
        json.dumps({"id": "cam4", "observations": [{"kind": "future_kind", "value": "x"},
                                                   {"kind": "mac", "value": "58:8f:cf:00:00:01"}]}),
        json.dumps({"id": "cam5", "observations": [{"kind": "http_server", "value": 5, "port": "80"}]}),
    ]
    result = run("-", stdin="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["cam1", None, "cam2", "cam3", "cam4", "cam5"]
    assert list(out[0])[: len(CONTRACT)] == CONTRACT
    assert (out[0]["vendor"], out[0]["device_type"], out[0]["covered"]) == ("hikvision", "camera", True)
    assert out[0]["signatures"] == [{"id": "hikvision-app-webs", "kind": "http_server", "value": "App-webs/", "port": 80}]
    assert "error" in out[1] and "JSON" in out[1]["error"]
    assert (out[2]["vendor"], out[2]["model"], out[2]["device_type"], out[2]["serial"]) == (
        "dahua", "DHI-NVR5464", "nvr", "3C06520PAN00001")
    assert out[3] == {"id": "cam3", "error": "'observations' must be a list"}
    assert (out[4]["vendor"], out[4]["brand"]) == ("hikvision", "ezviz")
    assert out[4]["ignored_kinds"] == ["future_kind"]
    assert out[4]["confidence"] < 0.5
    assert "port" in out[5]["error"]


def test_capture_file_input(tmp_path: Path) -> None:
    result = run(str(DATA / "captures" / "devices.jsonl"))
    assert result.returncode == 0, result.stderr
    expected = [json.loads(line) for line in (DATA / "captures" / "devices.jsonl").read_text().splitlines()]
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == [e["id"] for e in expected]
    for got, want in zip(out, expected, strict=True):
        assert got["vendor"] == want["expect"]["vendor"], got["id"]


def test_nmap_xml_from_real_nmap() -> None:
    result = run("--nmap-xml", str(DATA / "nmap" / "lab-banners.xml"))
    assert result.returncode == 0, result.stderr
    out = {o["id"]: o for o in map(json.loads, result.stdout.splitlines())}
    assert set(out) == {"127.64.0.10", "127.64.0.11", "127.64.0.12", "127.64.0.13"}
    assert out["127.64.0.10"]["vendor"] == "hikvision"
    assert out["127.64.0.11"]["vendor"] == "dahua"
    assert (out["127.64.0.12"]["vendor"], out["127.64.0.12"]["brand"], out["127.64.0.12"]["serial"]) == (
        "dahua", "lorex", "ND011811000000")
    assert out["127.64.0.13"]["vendor"] == "unknown"


def test_nmap_servicefp_responses_are_decoded() -> None:
    hosts = {h.address: h for h in parse((DATA / "nmap" / "lab-banners.xml").read_bytes())}
    kinds = {(o.kind, o.port) for o in hosts["127.64.0.13"].observations}
    assert ("open_port", 80) in kinds and ("http_headers", 80) in kinds
    headers = next(o.value for o in hosts["127.64.0.13"].observations if o.kind == "http_headers")
    assert headers.startswith("HTTP/1.0 200 OK\r\nServer: GoAhead-Webs/2.5.0\r\n")
    pairs = service_fingerprint_responses('SF:%r(RTSPRequest,10,"RTSP/1\\.0\\x20200\\x20OK\\r\\n")')
    assert pairs == [("RTSPRequest", "RTSP/1.0 200 OK\r\n")]


def test_usage_and_input_errors_are_one_line(tmp_path: Path) -> None:
    for args in ((), ("-", "--nmap-xml", "x.xml"), ("/nonexistent/file.jsonl",), ("--nmap-xml", "/nonexistent.xml")):
        result = run(*args)
        assert result.returncode == 2, args
        assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    bad = tmp_path / "bad.xml"
    bad.write_text("<nmaprun><host>")
    result = run("--nmap-xml", str(bad))
    assert result.returncode == 2 and "not valid nmap XML" in result.stderr
    bomb = tmp_path / "bomb.xml"
    bomb.write_text("<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'a'>]><nmaprun>&a;</nmaprun>")
    result = run("--nmap-xml", str(bomb))
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_identify_output_lists_the_evidence_behind_each_field() -> None:
    """Issue 14 item 7: `fields` names, per field, the signatures and observations behind it."""
    line = json.dumps({"id": "nvr", "observations": [
        {"kind": "mac", "value": "00:1f:54:12:34:56"},
        {"kind": "rtsp_www_authenticate", "value": 'Digest realm="Login to ND011811000000", nonce="a"', "port": 554}]})
    result = run("-", stdin=line + "\n")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert (out["vendor"], out["brand"], out["serial"]) == ("dahua", "lorex", "ND011811000000")
    fields = out["fields"]
    assert fields["serial"] == {"value": "ND011811000000", "evidence": [
        {"signature": "dahua-rtsp-realm-login-to-serial", "kind": "rtsp_www_authenticate",
         "observation": 'Digest realm="Login to ND011811000000", nonce="a"', "port": 554}]}
    assert [e["signature"] for e in fields["vendor"]["evidence"]] == ["dahua-rtsp-realm-login-to-serial", "oui-brand-lorex"]
    assert "lineage: lorex -> dahua" in fields["vendor"]["evidence"][1]["via"]
    assert fields["brand"]["evidence"][0]["signature"] == "oui-brand-lorex"
