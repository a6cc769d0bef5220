"""Socket helpers shared by the egress probes: ICMP errors through IP_RECVERR, and what they mean.

Without IP_RECVERR Linux does not report ICMP net/host unreachable on a UDP socket, so a refused
probe looks like a timeout (reference/lab.md section 9). With it, the error queue tells who
refused (the offender address) and how (ICMP type and code), which decides whether a "blocked"
stands on its own or needs a positive control.
"""

from __future__ import annotations

import errno
import ipaddress
import select
import socket
import struct
from dataclasses import dataclass

from ..scope import AddressClass, classify

IP_RECVERR = getattr(socket, "IP_RECVERR", 11)
IPV6_RECVERR = getattr(socket, "IPV6_RECVERR", 25)
SO_EE_ORIGIN_LOCAL = 1
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3


@dataclass(frozen=True, slots=True)
class IcmpError:
    errno: int
    origin: int
    type: int
    code: int
    offender: str | None

    def text(self) -> str:
        who = f" from {self.offender}" if self.offender else ""
        if self.origin == SO_EE_ORIGIN_LOCAL:
            return f"local error {errno.errorcode.get(self.errno, self.errno)}"
        fam = "ICMPv6" if self.origin == SO_EE_ORIGIN_ICMP6 else "ICMP"
        return f"{fam} type {self.type} code {self.code}{who} ({errno.errorcode.get(self.errno, self.errno)})"


def enable_recverr(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
    else:
        sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)


def parse_extended_err(cdata: bytes) -> IcmpError | None:
    """struct sock_extended_err followed by the offender's sockaddr (linux/errqueue.h)."""
    if len(cdata) < 16:
        return None
    ee_errno, origin, itype, icode, _pad, _info, _data = struct.unpack("=IBBBBII", cdata[:16])
    offender = None
    tail = cdata[16:]
    if len(tail) >= 8:
        family = struct.unpack("=H", tail[:2])[0]
        if family == socket.AF_INET:
            offender = socket.inet_ntop(socket.AF_INET, tail[4:8])
        elif family == socket.AF_INET6 and len(tail) >= 24:
            offender = socket.inet_ntop(socket.AF_INET6, tail[8:24])
    if offender in ("0.0.0.0", "::"):
        offender = None
    return IcmpError(ee_errno, origin, itype, icode, offender)


def read_errqueue(sock: socket.socket) -> IcmpError | None:
    """The next queued error of ``sock``, or None."""
    try:
        _data, ancdata, _flags, _addr = sock.recvmsg(512, 512, socket.MSG_ERRQUEUE | socket.MSG_DONTWAIT)
    except OSError:
        return None
    for level, ctype, cdata in ancdata:
        if (level == socket.IPPROTO_IP and ctype == IP_RECVERR) or (
            level == socket.IPPROTO_IPV6 and ctype == IPV6_RECVERR
        ):
            return parse_extended_err(cdata)
    return None


def wait_errqueue(sock: socket.socket, timeout: float) -> IcmpError | None:
    """Wait up to ``timeout`` for an error to be queued on ``sock`` (POLLERR), and read it."""
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLERR)
    if poller.poll(max(0, int(timeout * 1000))):
        return read_errqueue(sock)
    return None


def _internal(address: str | None) -> bool:
    if not address:
        return False
    try:
        return classify(ipaddress.ip_address(address)).cls in (AddressClass.INTERNAL, AddressClass.LOCAL)
    except ValueError:
        return False


def judge_error(err: IcmpError | None, exc_errno: int | None, dst: str) -> tuple[str, bool, str]:
    """(basis, conclusive, detail) for a probe that failed with ``exc_errno`` and/or ``err``.

    Conclusive without a control: a filter's "administratively prohibited", an unreachable from
    a router inside the organisation (not the destination), and this host having no route.
    A port unreachable or RST may come from the listener's own host (the listener not serving
    that port) or from a firewall's reject: a control decides (reference/lab.md section 9).
    """
    if err is not None and err.origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6):
        v6 = err.origin == SO_EE_ORIGIN_ICMP6
        unreach = (v6 and err.type == 1) or (not v6 and err.type == 3)
        if unreach and ((v6 and err.code in (1, 5, 6)) or (not v6 and err.code in (9, 10, 13))):
            return "admin-prohibited", True, err.text()
        if unreach and ((v6 and err.code == 4) or (not v6 and err.code == 3)):
            return "reset", False, err.text()
        if unreach or (v6 and err.type == 3) or (not v6 and err.type == 11):
            local_router = err.offender is not None and err.offender != dst and _internal(err.offender)
            return "unreachable", local_router, err.text()
        return "unreachable", False, err.text()
    if exc_errno == errno.ENETUNREACH:
        return "no-route", True, "this host has no route to the destination (ENETUNREACH)"
    if exc_errno == errno.ECONNREFUSED:
        return "reset", False, "connection refused (a RST or port unreachable: a reject, or nothing listening)"
    if exc_errno in (errno.EHOSTUNREACH, errno.EACCES, errno.EPERM):
        return "unreachable", False, f"{errno.errorcode.get(exc_errno, exc_errno)} with no ICMP detail"
    if exc_errno is None:
        return "timeout", False, "no answer"
    return "error", False, f"{errno.errorcode.get(exc_errno, exc_errno)}"
