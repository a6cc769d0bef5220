"""Helpers shared by tests/lab/test_lab_*.py: raw clients that speak to lab devices on loopback.

Every address used by these tests is inside 127.78.0.0/16 (this area's test block).
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

from camaudit.lab.discovery import dhip_frame

SHARED = Path(__file__).resolve().parents[3] / "shared"

SADP_PROBE = b'<?xml version="1.0" encoding="utf-8"?><Probe><Uuid>9F2C1B1E-0000-4000-8000-000000000001</Uuid><Types>inquiry</Types></Probe>'
DHIP_PROBE = dhip_frame(b'{"method":"DHDiscover.search","params":{"mac":"","uni":1}}\n')


def wsd_probe(message_id: str, types: str = "dn:NetworkVideoTransmitter") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
        'xmlns:dn="http://www.onvif.org/ver10/network/wsdl" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof">'
        f"<s:Header><a:MessageID>{message_id}</a:MessageID><a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header>"
        f"<s:Body><d:Probe><d:Types>{types}</d:Types></d:Probe></s:Body></s:Envelope>"
    ).encode()


def udp_ask(address: str, port: int, data: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(data, (address, port))
        try:
            return sock.recv(70000)
        except TimeoutError:
            return None


def tcp_ask(address: str, port: int, data: bytes, timeout: float = 3.0, limit: int = 1 << 20,
            rtsp: bool = False) -> bytes:
    """Send ``data`` and read until the device closes or goes quiet (RTSP: one header block)."""
    out = b""
    with socket.create_connection((address, port), timeout=timeout) as sock:
        sock.sendall(data)
        try:
            while len(out) < limit:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                if rtsp and out.endswith(b"\r\n\r\n"):
                    break
        except TimeoutError:
            pass
    return out


def corpus() -> dict[str, dict[str, object]]:
    data = json.loads((SHARED / "corpus" / "fingerprints.json").read_text(encoding="utf-8"))
    return {s["id"]: s for s in data["samples"]}


_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})|\\0")
#: the variable parts nmap/recog samples mark: <n>, <32 hex>, <serial>, ..., and "..."
_VARIABLE = re.compile(r"<(?:n|digits|hex|32 hex|serial|host|ver|8 hex)>|\.\.\.")


def sample_fragments(sample: str, vary: tuple[str, ...] = ()) -> list[bytes]:
    """The literal pieces of a corpus sample, in order, as bytes on the wire.

    nmap samples escape bytes (``\\xef``, ``\\0``), wrap optional parts in ``( )`` and elide
    variable parts; ``vary`` names device-specific substrings of concrete samples.
    """
    text = sample.replace("(", "").replace(")", "") if sample.startswith("HTTP/") else sample
    for value in vary:
        text = text.replace(value, "...")
    pieces = [p for p in _VARIABLE.split(text) if p]
    out = []
    for piece in pieces:
        raw = _ESCAPE.sub(lambda m: chr(int(m[1], 16)) if m[1] else "\0", piece)
        out.append(raw.encode("latin-1") if all(ord(c) < 256 for c in raw) else raw.encode())
    # the nmap escape notation encodes bytes: a BOM written \xef\xbb\xbf is 3 bytes, not UTF-8 of 3 chars
    return out


def contains_in_order(data: bytes, fragments: list[bytes]) -> bool:
    pos = 0
    for fragment in fragments:
        found = data.find(fragment, pos)
        if found < 0:
            return False
        pos = found + len(fragment)
    return True
