"""Which unicast discovery datagrams the network refused: ICMP errors on an unconnected UDP socket.

A host with nothing listening on WS-Discovery's, SADP's or DHIP's port answers a datagram with an
ICMP port unreachable (a router on the way may answer host unreachable or administratively
prohibited). Such a destination will not answer, so discovery need not wait its whole window
for it (issue 15: a one-host scan of a device without discovery listened 2 s for nothing).

An unconnected socket only hears of these errors with ``IP_RECVERR`` (Linux, ip(7)): the
kernel then queues each error with the original destination, read with ``MSG_ERRQUEUE``, and
also sets the socket's pending error, which fails the *next* ``sendto`` on that socket, to any
destination, without sending it. :func:`send` therefore sends itself and, when a pending
error fails a datagram, reads the queue (which clears it) and sends the datagram again.

Elsewhere (no ``IP_RECVERR``) nothing is refused and discovery listens its whole window as before.
A host that drops datagrams silently (a firewall) is never refused either. A forged ICMP error
can only make discovery stop listening for one device sooner, which whoever can forge it could
get as well by dropping that device's answers; the device's ports are still probed.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
import sys
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

#: Linux values (include/uapi/linux/in.h, in6.h, errqueue.h); Python 3.11 does not name them.
IP_RECVERR = 11
IPV6_RECVERR = 25
SO_EE_ORIGIN_ICMP = 2
SO_EE_ORIGIN_ICMP6 = 3

#: errno values the kernel gives ICMP errors that say the datagram did not reach a listener
#: (icmp_err_convert and icmpv6_err_convert): port unreachable, host or network unreachable or
#: unknown, protocol unreachable, administratively prohibited.
REFUSING_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EACCES,
     errno.ENOPROTOOPT}
)

#: Sends of one datagram tried while earlier datagrams' ICMP errors keep failing it. Each failed
#: attempt reads at least one queued error, so the loop ends anyway; the bound is for a flood.
#: (Under load the kernel may deliver a loopback ICMP error late, from ksoftirqd, so that it can
#: fail a send more than once in a row: three attempts lost datagrams of a 1,000-device scan.)
SEND_ATTEMPTS = 64
#: Errors read from one socket's queue at a time. The kernel bounds the queue by the socket's
#: receive buffer (a few thousand records); reading it to the end matters, since a queue left
#: non-empty keeps the socket "ready" (EPOLLERR) for an event loop that has nothing to read.
MAX_READ = 100_000

# struct sock_extended_err: ee_errno u32, ee_origin u8, ee_type u8, ee_code u8, ee_pad u8, ...
_EXTENDED_ERR = struct.Struct("=IBBB")

Refused = Callable[[str], None]


def enable(sock: socket.socket, family: int) -> bool:
    """Ask for ICMP errors on ``sock``; False where the platform cannot (then nothing is refused)."""
    if not sys.platform.startswith("linux"):
        return False
    level, option = (
        (socket.IPPROTO_IPV6, IPV6_RECVERR) if family == socket.AF_INET6 else (socket.IPPROTO_IP, IP_RECVERR)
    )
    try:
        sock.setsockopt(level, option, 1)
    except OSError:
        return False
    return True


def refused_errno(ancdata: Iterable[tuple[int, int, bytes]]) -> int | None:
    """The errno of an ICMP error that says a datagram reached no listener, from one
    ``MSG_ERRQUEUE`` message's ancillary data; None for anything else (a local error, a
    truncated or foreign record). Pure: bytes in, a number or None out."""
    for level, kind, data in ancdata:
        if (level, kind) not in ((socket.IPPROTO_IP, IP_RECVERR), (socket.IPPROTO_IPV6, IPV6_RECVERR)):
            continue
        if len(data) < _EXTENDED_ERR.size:
            continue
        ee_errno, origin, _type, _code = _EXTENDED_ERR.unpack_from(data)
        if origin in (SO_EE_ORIGIN_ICMP, SO_EE_ORIGIN_ICMP6) and ee_errno in REFUSING_ERRNOS:
            return int(ee_errno)
    return None


def read(sock: socket.socket, on_refused: Refused) -> int:
    """Read the socket's queued errors (at most MAX_READ); call ``on_refused(address)`` with the
    original destination of each refused datagram. Returns how many errors were read. Reading
    the last one also clears the socket's pending error."""
    count = 0
    while count < MAX_READ:
        try:
            _data, ancdata, _flags, destination = sock.recvmsg(1, 256, socket.MSG_ERRQUEUE)
        except (BlockingIOError, InterruptedError):
            break
        except OSError as exc:
            log.debug("reading ICMP errors failed: %s", exc)
            break
        count += 1
        if refused_errno(ancdata) is not None and isinstance(destination, tuple) and destination:
            on_refused(str(destination[0]).split("%", 1)[0])
    return count


def send(sock: socket.socket, payload: bytes, destination: tuple[str, int], on_refused: Refused) -> None:
    """``sock.sendto`` that survives earlier datagrams' ICMP errors: a pending error fails this
    send without sending it, so the queue is read (clearing it) and the datagram sent again.

    Raises OSError when the failure is this datagram's own (a refusing errno with no queued
    error behind it: no route to ``destination``), or any other error (BlockingIOError
    included: the caller buffers)."""
    unexplained = 0
    for _attempt in range(SEND_ATTEMPTS):
        try:
            sock.sendto(payload, destination)
            return
        except (BlockingIOError, InterruptedError):
            raise
        except OSError as exc:
            if exc.errno not in REFUSING_ERRNOS:
                raise
            if read(sock, on_refused):
                unexplained = 0
                continue
            # Nothing queued behind it: this datagram's own failure (no route), or an ICMP error
            # whose record was read just before the kernel set the socket's pending error (it
            # queues first, then sets it). Only a second such failure in a row is its own.
            unexplained += 1
            if unexplained == 2:
                raise
    # A flood of errors: the caller hands the datagram to its transport (one more try there),
    # and it is never taken for a refusal of this destination.
    raise BlockingIOError(errno.EAGAIN, "ICMP errors kept failing the send")
