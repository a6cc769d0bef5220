"""The active egress probes: nonce-tagged TCP, UDP, DNS, ICMP, NTP and proxy probes to a
cooperating listener, each bounded in time, each ending allowed, blocked or unknown with its
evidence (reference/egress.md section 1.2; reference/lab.md section 9).

Only an answer carrying the probe's own nonce makes a path ``allowed``: a TCP RST, an ICMP port
unreachable or a completed handshake prove nothing about egress. Every UDP socket sets
IP_RECVERR so that ICMP unreachables are seen (and by whom they were sent). One thread per probe,
started through a rate limiter, so a closed network costs the longest probe timeout and no more.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..model import bounded_text, utc_now
from . import dns, wire
from .netio import enable_recverr, judge_error, read_errqueue, wait_errqueue
from .results import ALLOWED, BLOCKED, UNKNOWN, PathResult

log = logging.getLogger(__name__)

TRACE_BASE_PORT = 33434  # the traceroute convention; the listener does not serve these
NO_ZONE_SUFFIX = "camaudit.invalid"  # RFC 6761: never resolves; only for direct queries


@dataclass(frozen=True, slots=True)
class Timing:
    timeout: float = 3.0  # TCP connect + echo, ICMP, proxy
    udp_tries: int = 2  # UDP datagrams per probe, spread over the timeout


class RateLimiter:
    """At most ``rate`` probe starts per second, across threads."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def _family(addr: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _result_for(basis: str) -> str:
    return UNKNOWN if basis in ("error", "no-nonce", "not-tested") else BLOCKED


def _failed(path: str, basis: str, conclusive: bool, detail: str, **kw: Any) -> PathResult:
    return PathResult(path=path, result=_result_for(basis), basis=basis, conclusive=conclusive,
                      detail=detail, ended_at=utc_now(), **kw)


def _echo_extra(seen: str | None, facts: wire.ListenerFacts | None) -> dict[str, Any]:
    """``seen_as``, and ``listener``: what the listener said it serves (zone, ports), when it did."""
    extra: dict[str, Any] = {"seen_as": seen}
    if facts is not None:
        extra["listener"] = facts.to_json()
    return extra


def _show(data: bytes | None) -> str | None:
    if data is None:
        return None
    return bounded_text(data[:200]).encode("unicode_escape").decode("ascii")


# -- TCP ---------------------------------------------------------------------------------------


def probe_tcp(path: str, dst: str, port: int, timing: Timing) -> PathResult:
    """Connect, send the probe line, read the echo. Allowed only on the echo of our nonce."""
    nonce = wire.new_nonce()
    payload = wire.probe_line(nonce, path)
    base: dict[str, Any] = {"nonce": nonce, "proto": "tcp", "dst": dst, "port": port, "sent": payload.decode("ascii").strip()}
    started = utc_now()
    sock = socket.socket(_family(dst), socket.SOCK_STREAM)
    deadline = time.monotonic() + timing.timeout
    try:
        enable_recverr(sock)
        sock.settimeout(timing.timeout)
        try:
            sock.connect((dst, port))
        except TimeoutError:
            return _failed(path, "timeout", False, f"no answer to the connection attempt in {timing.timeout:g} s",
                           started_at=started, **base)
        except OSError as exc:
            basis, conclusive, detail = judge_error(read_errqueue(sock), exc.errno, dst)
            return _failed(path, basis, conclusive, detail, started_at=started, **base)
        sock.sendall(payload)
        data = b""
        while b"\n" not in data and len(data) < wire.MAX_LINE:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                chunk = sock.recv(wire.MAX_LINE)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            data += chunk
        seen = wire.parse_echo(data, nonce)
        if seen is not None:
            return PathResult(path=path, result=ALLOWED, basis="echo", started_at=started, ended_at=utc_now(),
                              received=_show(data), detail=f"the listener echoed our nonce; it saw us as {seen}",
                              extra=_echo_extra(seen, wire.echo_facts(data, nonce)), **base)
        return _failed(path, "no-nonce", False,
                       "a connection was accepted but no echo of our nonce came back (a transparent proxy, "
                       "a SYN proxy or another service answered): proves nothing", received=_show(data),
                       started_at=started, **base)
    finally:
        sock.close()


# -- UDP ---------------------------------------------------------------------------------------


def _udp_exchange(dst: str, port: int, payload: bytes, timing: Timing, accept: Callable[[bytes], bool],
                  ttl: int | None = None) -> tuple[bytes | None, str, bool, str]:
    """Send ``payload`` up to ``udp_tries`` times on a connected socket with IP_RECVERR; return
    (accepted answer or None, basis, conclusive, detail)."""
    sock = socket.socket(_family(dst), socket.SOCK_DGRAM)
    try:
        enable_recverr(sock)
        try:
            sock.connect((dst, port))
        except OSError as exc:
            basis, conclusive, detail = judge_error(None, exc.errno, dst)
            return None, basis, conclusive, detail
        tries = max(1, timing.udp_tries)
        per_try = timing.timeout / tries
        last: bytes | None = None
        for _ in range(tries):
            try:
                sock.send(payload)
            except OSError as exc:
                basis, conclusive, detail = judge_error(read_errqueue(sock), exc.errno, dst)
                return None, basis, conclusive, detail
            deadline = time.monotonic() + per_try
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    break
                except OSError as exc:
                    basis, conclusive, detail = judge_error(read_errqueue(sock), exc.errno, dst)
                    return None, basis, conclusive, detail
                last = data
                if accept(data):
                    return data, "echo", True, ""
        if last is not None:
            return last, "no-nonce", False, "answers came back, but none carried our nonce: proves nothing"
        return None, "timeout", False, f"no answer to {tries} datagram(s) in {timing.timeout:g} s"
    finally:
        sock.close()


def probe_udp(path: str, dst: str, port: int, timing: Timing) -> PathResult:
    nonce = wire.new_nonce()
    payload = wire.probe_line(nonce, path)
    started = utc_now()
    data, basis, conclusive, detail = _udp_exchange(
        dst, port, payload, timing, lambda d: wire.parse_echo(d, nonce) is not None)
    base: dict[str, Any] = {"nonce": nonce, "proto": "udp", "dst": dst, "port": port, "sent": payload.decode("ascii").strip(),
            "started_at": started, "received": _show(data)}
    if basis == "echo" and data is not None:
        seen = wire.parse_echo(data, nonce)
        return PathResult(path=path, result=ALLOWED, basis="echo", ended_at=utc_now(),
                          detail=f"the listener echoed our nonce; it saw us as {seen}",
                          extra=_echo_extra(seen, wire.echo_facts(data, nonce)), **base)
    return _failed(path, basis, conclusive, detail, **base)


# -- DNS ---------------------------------------------------------------------------------------


def probe_dns(path: str, server: str, zone: str | None, timing: Timing, *, via_resolver: bool) -> PathResult:
    """A TXT query for ``<nonce>.<zone>``: to the configured resolver (recursion reaches the
    listener's zone?) or straight to the listener (direct DNS leaves?). Allowed only when the
    answer's TXT carries our nonce, which only the listener's zone gives."""
    nonce = wire.new_nonce()
    name = f"{nonce}.{zone or NO_ZONE_SUFFIX}"
    qid = int.from_bytes(bytes.fromhex(nonce[-4:]), "big")
    query = dns.build_query(name, dns.QTYPE_TXT, qid, recursion=True)
    started = utc_now()

    def accept(data: bytes) -> bool:
        resp = dns.parse_response(data)
        return resp is not None and resp.qid == qid

    data, basis, conclusive, detail = _udp_exchange(server, 53, query, timing, accept)
    base: dict[str, Any] = {"nonce": nonce, "proto": "udp", "dst": server, "port": 53, "sent": f"TXT? {name}",
            "started_at": started}
    if data is None:
        return _failed(path, basis, conclusive, detail, **base)
    resp = dns.parse_response(data)
    if resp is None or resp.qid != qid:
        return _failed(path, "no-nonce", False, "answers came back that are not replies to our query", **base)
    shown = f"rcode {resp.rcode}; " + "; ".join(f"type {t}: {v}" for t, v in resp.answers[:4])
    echoed = [txt for txt in resp.txt() if nonce in txt.lower()]
    if echoed:
        how = ("the resolver carried our nonce name to the listener's zone and back"
               if via_resolver else "the listener answered our direct query with our nonce")
        facts = wire.parse_facts(echoed[0])
        return PathResult(path=path, result=ALLOWED, basis="echo", received=shown, ended_at=utc_now(),
                          detail=how, extra={"listener": facts.to_json()} if facts else {}, **base)
    if via_resolver and zone is None:
        return _failed(path, "error", False,
                       "no auditor zone (--dns-zone): the resolver answered, but whether it recurses to the "
                       "internet cannot be proven either way", received=shown, **base)
    if resp.rcode in (dns.RCODE_NXDOMAIN, dns.RCODE_REFUSED, 2):
        what = {2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}[resp.rcode]
        return _failed(path, "negative", False, f"the server answered {what} and no nonce came back",
                       received=shown, **base)
    if resp.answers and not via_resolver:
        return _failed(path, "no-nonce", False, "something answered on port 53 but not with our nonce",
                       received=shown, **base)
    if resp.answers:
        return _failed(path, "no-nonce", False,
                       "the resolver answered our nonce name with data that is not the listener's "
                       "(a wildcard or split-horizon zone?): proves nothing", received=shown, **base)
    return _failed(path, "negative", False, "an empty answer without our nonce", received=shown, **base)


def no_resolver(path: str) -> PathResult:
    return PathResult(path=path, result=BLOCKED, basis="absent", conclusive=True,
                      detail="no DNS resolver is configured on this sensor (/etc/resolv.conf, --resolver)")


# -- NTP ---------------------------------------------------------------------------------------


def probe_ntp(dst: str, timing: Timing) -> PathResult:
    """An NTP client request whose transmit timestamp is our nonce; the reply must echo it."""
    stamp_hex = wire.new_nonce()[-16:]
    nonce = wire.NONCE_PREFIX + "0000" + stamp_hex
    packet, stamp = wire.ntp_request(nonce)
    started = utc_now()
    data, basis, conclusive, detail = _udp_exchange(
        dst, 123, packet, timing, lambda d: wire.ntp_reply_matches(d, stamp))
    base: dict[str, Any] = {"nonce": nonce, "proto": "udp", "dst": dst, "port": 123,
            "sent": f"NTP client request, transmit timestamp {stamp_hex}", "started_at": started,
            "received": data.hex()[:96] if data else None}
    if basis == "echo":
        return PathResult(path="ntp", result=ALLOWED, basis="echo", ended_at=utc_now(),
                          detail="an NTP reply carried our timestamp back", **base)
    return _failed("ntp", basis, conclusive, detail, **base)


# -- ICMP --------------------------------------------------------------------------------------


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = int(sum(struct.unpack(f"!{len(data) // 2}H", data)))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def probe_icmp(path: str, dst: str, timing: Timing) -> PathResult:
    """An echo request whose payload is our nonce; allowed on an echo reply carrying it."""
    nonce = wire.new_nonce()
    payload = nonce.encode("ascii")
    v6 = ":" in dst
    started = utc_now()
    base: dict[str, Any] = {"nonce": nonce, "proto": "icmpv6" if v6 else "icmp", "dst": dst, "sent": f"echo request, payload {nonce}",
            "started_at": started}
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    sock: socket.socket | None = None
    raw = False
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            sock = socket.socket(_family(dst), kind, proto)
            raw = kind == socket.SOCK_RAW
            break
        except OSError:
            continue
    if sock is None:
        return _failed(path, "error", False, "sending an ICMP echo needs root or net.ipv4.ping_group_range", **base)
    ident = int.from_bytes(bytes.fromhex(nonce[-4:]), "big")
    try:
        with contextlib.suppress(OSError):
            enable_recverr(sock)
        echo_type, reply_type = (128, 129) if v6 else (8, 0)
        header = struct.pack("!BBHHH", echo_type, 0, 0, ident, 1)
        packet = header + payload
        if not v6:
            packet = struct.pack("!BBHHH", echo_type, 0, _checksum(packet), ident, 1) + payload
        try:
            sock.sendto(packet, (dst, 0))
        except OSError as exc:
            basis, conclusive, detail = judge_error(read_errqueue(sock), exc.errno, dst)
            return _failed(path, basis, conclusive, detail, **base)
        deadline = time.monotonic() + timing.timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, peer = sock.recvfrom(2048)
            except TimeoutError:
                break
            except OSError as exc:
                basis, conclusive, detail = judge_error(read_errqueue(sock), exc.errno, dst)
                return _failed(path, basis, conclusive, detail, **base)
            if raw and not v6 and data:
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) < 8 or payload not in data:
                continue
            if data[0] == reply_type and peer[0] == dst:
                return PathResult(path=path, result=ALLOWED, basis="echo", ended_at=utc_now(),
                                  received=f"echo reply from {peer[0]} carrying our nonce",
                                  detail="an echo reply carried our nonce back (the listener host's "
                                         "kernel answers; the listener's log makes it one-way proof)",
                                  **base)
            if raw and data[0] in ((1, 3) if v6 else (3, 11)):
                from .netio import SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6, IcmpError
                err = IcmpError(errno.EHOSTUNREACH, SO_EE_ORIGIN_ICMP6 if v6 else SO_EE_ORIGIN_ICMP,
                                data[0], data[1], peer[0])
                basis, conclusive, detail = judge_error(err, None, dst)
                return _failed(path, basis, conclusive, detail, **base)
        return _failed(path, "timeout", False, f"no echo reply in {timing.timeout:g} s", **base)
    finally:
        sock.close()


# -- HTTP proxy --------------------------------------------------------------------------------

_WPAD_PROXY_RE = re.compile(r"PROXY\s+([A-Za-z0-9.\-\[\]:]+):(\d{1,5})")


def parse_pac(text: str) -> list[tuple[str, int]]:
    """``PROXY host:port`` entries of a PAC/WPAD file (no JavaScript is run)."""
    found: list[tuple[str, int]] = []
    for host, port in _WPAD_PROXY_RE.findall(text[:65536]):
        entry = (host.strip("[]"), int(port))
        if entry not in found and 0 < entry[1] < 65536:
            found.append(entry)
    return found[:4]


def discover_wpad(timeout: float) -> tuple[str, int] | None:
    """The first proxy of ``http://wpad/wpad.dat``, when the name ``wpad`` resolves here."""
    result: list[tuple[str, int] | None] = [None]

    def work() -> None:
        try:
            infos = socket.getaddrinfo("wpad", 80, type=socket.SOCK_STREAM)
        except OSError:
            return
        addr = str(infos[0][4][0])
        try:
            with socket.create_connection((addr, 80), timeout=timeout) as conn:
                conn.sendall(b"GET /wpad.dat HTTP/1.0\r\nHost: wpad\r\n\r\n")
                conn.settimeout(timeout)
                data = b""
                while len(data) < 65536:
                    chunk = conn.recv(8192)
                    if not chunk:
                        break
                    data += chunk
        except OSError:
            return
        proxies = parse_pac(data.decode("latin-1"))
        result[0] = proxies[0] if proxies else None

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(timeout * 2)
    return result[0]


def probe_proxy(proxy: tuple[str, int] | None, listener: str, port: int, timing: Timing, how: str) -> PathResult:
    """HTTP CONNECT through ``proxy`` to the listener, then the echo exchange inside the tunnel."""
    if proxy is None:
        return PathResult(path="proxy", result=BLOCKED, basis="absent", conclusive=True,
                          detail=f"no HTTP proxy configured or discovered ({how})")
    nonce = wire.new_nonce()
    target = f"[{listener}]:{port}" if ":" in listener else f"{listener}:{port}"
    request = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nUser-Agent: camaudit-egress\r\n\r\n".encode()
    started = utc_now()
    base: dict[str, Any] = {"nonce": nonce, "proto": "tcp", "dst": f"{proxy[0]}:{proxy[1]}", "port": port,
            "sent": f"CONNECT {target}, then {wire.probe_line(nonce, 'proxy').decode().strip()}", "started_at": started}
    try:
        conn = socket.create_connection(proxy, timeout=timing.timeout)
    except OSError as exc:
        return _failed("proxy", "refused", True, f"the proxy {proxy[0]}:{proxy[1]} ({how}) did not accept a "
                       f"connection: {exc.strerror or exc}", **base)
    try:
        conn.settimeout(timing.timeout)
        conn.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 8192:
            chunk = conn.recv(4096)
            if not chunk:
                break
            head += chunk
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1", "replace")[:120]
        parts = status_line.split(" ")
        code = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if code != 200:
            basis = "refused" if code in (401, 403, 405, 407) else "negative"
            return _failed("proxy", basis, basis == "refused", f"the proxy answered {status_line!r}",
                           received=status_line, **base)
        rest = head.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in head else b""
        conn.sendall(wire.probe_line(nonce, "proxy"))
        data = rest
        while b"\n" not in data and len(data) < wire.MAX_LINE:
            chunk = conn.recv(wire.MAX_LINE)
            if not chunk:
                break
            data += chunk
        if wire.parse_echo(data, nonce) is not None:
            return PathResult(path="proxy", result=ALLOWED, basis="echo", received=_show(data), ended_at=utc_now(),
                              detail=f"the proxy {proxy[0]}:{proxy[1]} ({how}) tunnelled our nonce to the listener",
                              **base)
        return _failed("proxy", "no-nonce", False, "the proxy accepted CONNECT but no echo came back",
                       received=_show(data), **base)
    except (TimeoutError, OSError) as exc:
        return _failed("proxy", "timeout", False, f"the proxy exchange stopped: {exc}", **base)
    finally:
        conn.close()


# -- TTL-stepped probes (reference/egress.md 1.1, firewalking) --------------------------------------


def trace(dst: str, max_hops: int, timeout: float) -> dict[str, object]:
    """UDP probes with TTL 1..max_hops towards ``dst``, all at once; ICMP time-exceeded tells
    which hop answered. An indicator only: a hop beyond the gateway proves a route, not egress."""
    v6 = ":" in dst
    hops: list[dict[str, object]] = []
    lock = threading.Lock()

    def one(ttl: int) -> None:
        sock = socket.socket(_family(dst), socket.SOCK_DGRAM)
        try:
            enable_recverr(sock)
            if v6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, ttl)
            else:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, ttl)
            sock.connect((dst, TRACE_BASE_PORT + ttl))
            sock.send(b"camaudit egress ttl probe")
            err = wait_errqueue(sock, timeout)
        except OSError as exc:
            with lock:
                hops.append({"ttl": ttl, "address": None, "what": f"error {exc.strerror}"})
            return
        finally:
            sock.close()
        with lock:
            if err is None:
                hops.append({"ttl": ttl, "address": None, "what": "no answer"})
            elif (err.type == 11 and not v6) or (err.type == 3 and v6):
                hops.append({"ttl": ttl, "address": err.offender, "what": "time exceeded (forwarded this far)"})
            else:
                hops.append({"ttl": ttl, "address": err.offender, "what": err.text()})

    threads = [threading.Thread(target=one, args=(ttl,), daemon=True) for ttl in range(1, max_hops + 1)]
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join(timeout + 1)
    hops.sort(key=lambda h: int(h["ttl"]))  # type: ignore[call-overload]
    forwarded = [h for h in hops if str(h["what"]).startswith("time exceeded")]
    reached = any(h["address"] == dst for h in hops)
    return {
        "destination": dst,
        "hops": hops,
        "last_forwarding_hop": forwarded[-1]["address"] if forwarded else None,
        "destination_answered": reached,
        "note": "TTL-stepped probes locate the forwarding hop; a route is not egress (egress.md 1.4 row 8)",
    }


def is_ipv6(addr: str) -> bool:
    try:
        return ipaddress.ip_address(addr).version == 6
    except ValueError:
        return False
