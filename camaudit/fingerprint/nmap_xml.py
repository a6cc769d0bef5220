"""nmap ``-sV`` XML -> observations per host (for ``camaudit identify --nmap-xml``).

What nmap records becomes raw evidence of camaudit's kinds: open ports, the MAC, the Server
header from the ``http-server-header`` script (a version script, so ``-sV`` runs it), titles,
certificates and favicons when their scripts ran, the raw responses that nmap keeps in
``servicefp`` for services it could not name, and nmap's own service match (kind
``nmap_service``). Parsed with defusedxml: the file may come from anywhere.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from defusedxml import ElementTree as SafeET

from ..errors import InputError
from ..model import Observation, bounded_text

#: Larger files are refused with a message rather than parsed into memory.
MAX_XML_BYTES = 256 * 1024 * 1024

_FP_RESPONSE = re.compile(r'r\(([A-Za-z0-9_]+),([0-9A-Fa-f]+),"((?:[^"\\]|\\.)*)"\)')
_FP_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|.)", re.S)
_FAVICON_MD5 = re.compile(r"\b([0-9a-fA-F]{32})\b")
_SIMPLE_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "0": "\0"}
_PROTOCOLS = frozenset({"tcp", "udp", "sctp"})


@dataclass(slots=True)
class NmapHost:
    address: str
    observations: list[Observation] = field(default_factory=list)

    def open_ports(self) -> list[tuple[str, int]]:
        """(protocol, port) of every open port nmap found."""
        found = []
        for obs in self.observations:
            if obs.kind == "open_port" and obs.port is not None:
                found.append((obs.value.partition("/")[0] or "tcp", obs.port))
        return found


@dataclass(slots=True)
class NmapRun:
    """One nmap run: its hosts, and what the file says about the run itself (all untrusted)."""

    hosts: list[NmapHost]
    args: str = ""
    version: str = ""
    started: int | None = None  # epoch seconds, as nmap wrote them
    finished: int | None = None
    hosts_total: int | None = None


#: Longest nmap command line kept (in the scan's notes and settings).
MAX_ARGS_CHARS = 500


def parse_file(path: str) -> list[NmapHost]:
    """Read an nmap XML file; :class:`InputError` with a one-line reason when it cannot be used."""
    return parse_run_file(path).hosts


def parse_run_file(path: str) -> NmapRun:
    """Read an nmap XML file as a run; :class:`InputError` with a one-line reason when it
    cannot be used."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_XML_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read nmap XML {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_XML_BYTES:
        raise InputError(f"nmap XML {path} is larger than {MAX_XML_BYTES // (1024 * 1024)} MiB")
    return parse_run(data, origin=path)


def parse(data: bytes | str, origin: str = "nmap XML") -> list[NmapHost]:
    """Hosts and their observations from nmap XML text."""
    return parse_run(data, origin).hosts


def parse_run(data: bytes | str, origin: str = "nmap XML") -> NmapRun:
    """The run and its hosts from nmap XML text."""
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # noqa: BLE001 - malformed or hostile XML: one clear message
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise InputError(f"{origin} is not valid nmap XML: {reason}") from exc
    if root.tag != "nmaprun":
        raise InputError(f"{origin} is not nmap XML (root element <{str(root.tag)[:40]}>, expected <nmaprun>)")
    hosts = [host for host in (_host(el) for el in root.iter("host")) if host is not None]
    finished = root.find("runstats/finished")
    total = root.find("runstats/hosts")
    return NmapRun(
        hosts=hosts,
        args=" ".join((root.get("args") or "").split())[:MAX_ARGS_CHARS],
        version=(root.get("version") or "")[:40],
        started=_epoch(root.get("start")),
        finished=_epoch(finished.get("time")) if finished is not None else None,
        hosts_total=_epoch(total.get("total")) if total is not None else None,
    )


def _epoch(text: str | None) -> int | None:
    """A non-negative integer attribute (epoch seconds, a count), or None."""
    if text is None or not text.strip().isdigit() or len(text.strip()) > 12:
        return None
    return int(text.strip())


def _host(element: Any) -> NmapHost | None:
    address = None
    mac = None
    for addr in element.findall("address"):
        kind = addr.get("addrtype")
        if kind in ("ipv4", "ipv6") and address is None:
            address = _ip(addr.get("addr"))
        elif kind == "mac":
            mac = addr.get("addr")
    if not address:
        return None
    host = NmapHost(address)

    def add(kind: str, value: str, port: int | None = None) -> None:
        if value.strip():
            host.observations.append(Observation(address, kind, bounded_text(value), port, source="nmap"))

    if mac:
        add("mac", mac.lower())
    hostnames = element.find("hostnames")
    for name_el in hostnames.findall("hostname") if hostnames is not None else []:
        add("hostname", name_el.get("name", ""))
        break  # the first name nmap gives (user-set before PTR) is the one people know the host by
    for port_el in element.iter("port"):
        state = port_el.find("state")
        if state is None or state.get("state") != "open":
            continue
        protocol = port_el.get("protocol", "tcp")
        try:
            port = int(port_el.get("portid", ""))
        except ValueError:
            continue
        if protocol not in _PROTOCOLS or not 0 <= port <= 65535:
            continue  # not a port: a damaged or hostile file
        add("open_port", f"{protocol}/{port}", port)
        service = port_el.find("service")
        name = service.get("name", "") if service is not None else ""
        if service is not None:
            lines = [f"{key}={service.get(key)}" for key in
                     ("name", "product", "version", "extrainfo", "hostname", "devicetype", "ostype") if service.get(key)]
            if service.get("product"):
                add("nmap_service", "\n".join(lines).replace("name=", "service=", 1), port)
            fingerprint = service.get("servicefp")
            if fingerprint:
                for probe, response in service_fingerprint_responses(fingerprint):
                    kind = _response_kind(probe, response, name)
                    if kind:
                        add(kind, response, port)
        for script in port_el.findall("script"):
            for kind, value in _script_observations(script, name):
                add(kind, value, port)
    return host


def _ip(text: str | None) -> str | None:
    """The address in its canonical form, or None when it is not an IP address."""
    try:
        return str(ipaddress.ip_address((text or "").strip()))
    except ValueError:
        return None


def service_fingerprint_responses(fingerprint: str) -> list[tuple[str, str]]:
    """(probe name, decoded response) pairs from an nmap ``servicefp`` string."""
    joined = fingerprint.replace("\nSF:", "").replace("\r", "")
    return [(m.group(1), _unescape(m.group(3))) for m in _FP_RESPONSE.finditer(joined)]


def _unescape(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token.startswith("x") and len(token) == 3:
            return chr(int(token[1:], 16))
        return _SIMPLE_ESCAPES.get(token, token)

    return _FP_ESCAPE.sub(replace, text)


def _response_kind(probe: str, response: str, service: str) -> str | None:
    if response.startswith("RTSP/") or probe.startswith("RTSP"):
        return "rtsp_response"
    if response.startswith("HTTP/"):
        return "http_headers"
    if probe == "NULL" and service in ("telnet", "ftp"):
        return f"{service}_banner"
    return None


def _script_observations(script: Any, service: str) -> list[tuple[str, str]]:
    script_id = script.get("id", "")
    output = script.get("output", "") or ""
    elems = {el.get("key"): (el.text or "") for el in script.findall("elem")}
    if script_id == "http-server-header":
        values = [el.text or "" for el in script.findall("elem")] or [output]
        kind = "rtsp_server" if service == "rtsp" else "http_server"
        return [(kind, v.strip()) for v in values if v.strip()]
    if script_id == "http-title":
        return [("http_title", elems.get("title") or output.strip())]
    if script_id == "http-favicon":
        found = _FAVICON_MD5.search(output)
        return [("favicon_md5", found.group(1).lower())] if found else []
    if script_id == "ssl-cert":
        subject = _name_table(script, "subject")
        issuer = _name_table(script, "issuer")
        if subject:
            return [("tls_cert", f"subject={subject}; issuer={issuer}" if issuer else f"subject={subject}")]
        return []
    if script_id == "banner" and service in ("telnet", "ftp"):
        return [(f"{service}_banner", output.strip())]
    return []


def _name_table(script: Any, key: str) -> str:
    for table in script.findall("table"):
        if table.get("key") == key:
            parts = [f"{el.get('key')}={el.text or ''}" for el in table.findall("elem")]
            order = {"commonName": 0, "organizationalUnitName": 1, "organizationName": 2}
            parts.sort(key=lambda p: order.get(p.split("=", 1)[0], 9))
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                     "localityName": "L", "stateOrProvinceName": "ST", "countryName": "C"}
            return ",".join(f"{short.get(k, k)}={v}" for k, v in (p.split("=", 1) for p in parts))
    return ""
