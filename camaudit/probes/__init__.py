"""Per-service probes: what camaudit asks each open port, bounded in time and in bytes.

``probe_host(address, ports, config)`` decides per port what to send (DESIGN.md section 1,
"probe"):

- RTSP ports (554, 8554, 5554, 10554): OPTIONS, then DESCRIBE, without credentials;
- TLS ports (443, 8443): a TLS handshake (the certificate is evidence, never verified), then HTTP;
- known HTTP ports (80, 81, 88, 8080): HTTP GET / and GET /favicon.ico;
- every other port: a short wait for a server-speaks-first banner (telnet, FTP), then HTTP.

Every exchange has a deadline (``ProbeConfig.timeout``), every read a byte limit
(``ProbeConfig.max_response_bytes``), and a host has an overall budget; what could not be done is
said in plain words in ``ProbeReport.problems``. Nothing here raises out of ``probe_host``: a
device's answer is untrusted input, and one bad device must not stop a scan.

The exchanges live in the submodules (``http``, ``tls``, ``rtsp``, ``banner``); this module holds
the shared plumbing they use: the deadline, connect/read/close helpers and the per-port context.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from .. import __version__
from ..config import ProbeConfig
from ..model import Observation
from .ports import PRINT_PORTS

log = logging.getLogger(__name__)

__all__ = [
    "PORT_PROTOCOLS",
    "PROTOCOLS",
    "PRINT_PORTS",
    "ProbeReport",
    "probe_host",
    "protocol_for",
]

#: Sent on every HTTP and RTSP request: plain and honest, so device logs show who asked.
USER_AGENT = f"camaudit/{__version__}"

#: What probe_host speaks on a port. ``auto`` waits for a banner, then tries HTTP.
PROTOCOLS: frozenset[str] = frozenset({"http", "tls", "rtsp", "telnet", "ftp", "auto"})

#: The port -> protocol map. RTSP and TLS ports per the issue (items 4 and 7) and config/camaudit.toml;
#: 21/23 are the FTP/telnet ports whose banners DESIGN.md section 3 lists as evidence.
PORT_PROTOCOLS: Mapping[int, str] = {
    21: "ftp",
    23: "telnet",
    80: "http",
    81: "http",
    88: "http",
    8080: "http",
    # The HTTP endpoint of a WS-Discovery host (Windows' WSDAPI; lab.md 8.5: wsdd listens on
    # HTTP IP:5357): a web server, so no banner is waited for.
    5357: "http",
    443: "tls",
    8443: "tls",
    554: "rtsp",
    5554: "rtsp",
    8554: "rtsp",
    10554: "rtsp",
}

#: Ports of a protocol known to wait for the client's first message: a banner wait there only
#: waits (issue 15: a one-host scan of a Hikvision or Dahua device spent a whole BANNER_WAIT on
#: it), so they get none. A telnet or FTP server put on such a port is missed; a user who knows
#: of one says so with a protocol override (``protocol_for``), which takes precedence.
CLIENT_FIRST_PORTS: Mapping[int, str] = {
    # fingerprinting.md 4.1: the SDK port's 16-byte reply (nmap-service-probes line 1801),
    # corpus nmap-hik-sdk8000; Hikvision's clients open the exchange.
    8000: "Hikvision SDK port",
    # fingerprinting.md 4.2: Dahua's private TCP protocol (DHIP's Port field); nmap has no
    # banner for it (nmap-services: "unknown").
    37777: "Dahua private TCP port",
    # SMB: the client opens with its NEGOTIATE request ([MS-SMB2], [MS-CIFS]); over NetBIOS
    # the calling node sends a SESSION REQUEST first (RFC 1002, session service). A Windows
    # host or a NAS beside the cameras has them open: a banner wait there was a second for
    # nothing (issue 15: the Windows host alone took 1.45 s, the slowest of every profile).
    445: "SMB",
    139: "NetBIOS session service (SMB)",
}

#: Ports probed at once on one host: embedded web servers handle few connections (config.toml
#: ``per_host`` says the same for the sweep).
PORT_CONCURRENCY = 3
#: Longest wait for a server-speaks-first banner before sending HTTP (scaled down with short
#: timeouts, so it never eats most of a probe's deadline).
BANNER_WAIT = 1.0
#: After the head of a body-until-close response arrived, stop when the server goes quiet this long.
IDLE_AFTER_HEAD = 1.0
#: A host's probes together may take this many probe timeouts at most.
HOST_BUDGET_TIMEOUTS = 6


def protocol_for(port: int, overrides: Mapping[int, str] | None = None) -> str:
    """The protocol probe_host speaks on ``port``: an override first, then PORT_PROTOCOLS."""
    if overrides and port in overrides:
        return overrides[port]
    return PORT_PROTOCOLS.get(port, "auto")


@dataclass(slots=True)
class ProbeReport:
    """What probing one host produced: evidence, and the plain-language list of what failed."""

    observations: list[Observation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def add(self, observation: Observation) -> None:
        """Add ``observation`` unless the same kind/value/port is already there."""
        key = (observation.kind, observation.value, observation.port)
        if any((o.kind, o.value, o.port) == key for o in self.observations):
            return
        self.observations.append(observation)


class Deadline:
    """A point in time an exchange must finish by (monotonic clock)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - time.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0


def seconds_text(seconds: float) -> str:
    """``5 s``, ``0.5 s``: how long we waited, for problem lines."""
    return f"{seconds:g} s"


@dataclass(slots=True)
class PortContext:
    """One port being probed: where to send, the limits, and where evidence goes."""

    address: str
    port: int
    protocol: str
    config: ProbeConfig
    report: ProbeReport

    @property
    def expected(self) -> bool:
        """True when we know what this port should speak, so silence there is worth saying."""
        return self.protocol != "auto"

    def observe(self, kind: str, value: str, source: str) -> None:
        """Record evidence as given (raw kinds keep their line ends); blank values are skipped."""
        if value.strip():
            self.report.add(Observation(self.address, kind, value, port=self.port, source=source))

    def problem(self, text: str) -> None:
        line = f"tcp/{self.port}: {text}"
        if line not in self.report.problems:
            self.report.problems.append(line)

    async def connect(
        self, deadline: Deadline, *, tls: ssl.SSLContext | None = None, quiet: bool = False
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """Open a connection (and TLS handshake) within ``deadline``; None and a problem if not.

        ``quiet``: do not record connection failures (the caller reports them itself).
        """
        what = "TLS handshake" if tls else "TCP connection"
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    self.address,
                    self.port,
                    ssl=tls,
                    ssl_handshake_timeout=max(0.1, deadline.remaining()) if tls else None,
                    limit=max(self.config.max_response_bytes, 2**16),
                ),
                timeout=deadline.remaining(),
            )
        except TimeoutError:
            if not quiet:
                self.problem(f"no {what} within {seconds_text(deadline.seconds)}")
        except ssl.SSLError:
            raise  # the TLS probe reports these with the details it needs
        except ConnectionRefusedError:
            if not quiet:
                self.problem("connection refused (the port closed after the sweep)")
        except ConnectionResetError:
            if not quiet:
                self.problem(f"connection reset by the device during the {what}")
        except OSError as exc:
            if not quiet:
                self.problem(f"cannot connect: {exc.strerror or exc}")
        return None


@dataclass(slots=True)
class ReadResult:
    """The bytes a read loop collected, and why it stopped.

    ``why``: ``complete`` (framing satisfied), ``eof`` (server closed), ``timeout`` (deadline),
    ``idle`` (quiet after a usable head), ``limit`` (byte limit reached), ``foreign`` (not the
    protocol we speak), ``reset`` (connection reset), ``error`` (other socket error).
    """

    data: bytes
    why: str
    error: str = ""


async def read_until(
    reader: asyncio.StreamReader,
    deadline: Deadline,
    limit: int,
    feed: Callable[[bytes], bool],
    *,
    foreign: Callable[[], bool] | None = None,
    idle: Callable[[], float | None] | None = None,
) -> ReadResult:
    """Read until ``feed`` says the message is complete, bounded by ``deadline`` and ``limit``.

    ``idle()`` may return a quiet period after which stopping is fine (a head already arrived);
    ``foreign()`` says the bytes are not our protocol, so waiting longer is pointless.
    """
    buf = bytearray()
    while True:
        if len(buf) >= limit:
            return ReadResult(bytes(buf[:limit]), "limit")
        remaining = deadline.remaining()
        if remaining <= 0:
            return ReadResult(bytes(buf), "timeout")
        quiet = idle() if idle is not None else None
        wait = remaining if quiet is None else min(remaining, quiet)
        try:
            chunk = await asyncio.wait_for(reader.read(min(2**16, limit - len(buf))), wait)
        except TimeoutError:
            if quiet is not None and deadline.remaining() > 0:
                return ReadResult(bytes(buf), "idle")
            return ReadResult(bytes(buf), "timeout")
        except ConnectionResetError:
            return ReadResult(bytes(buf), "reset")
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            return ReadResult(bytes(buf), "error", str(exc) or type(exc).__name__)
        if not chunk:
            return ReadResult(bytes(buf), "eof")
        buf += chunk
        if feed(chunk):
            return ReadResult(bytes(buf[:limit]), "complete")
        if foreign is not None and foreign():
            return ReadResult(bytes(buf), "foreign")


async def send(writer: asyncio.StreamWriter, data: bytes, deadline: Deadline) -> str | None:
    """Write ``data`` within ``deadline``; None on success, else why it failed, in words."""
    try:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout=deadline.remaining())
    except TimeoutError:
        return "the device did not accept our request in time"
    except (ConnectionResetError, BrokenPipeError):
        return "connection reset by the device"
    except (OSError, ssl.SSLError) as exc:
        return f"cannot send the request: {getattr(exc, 'strerror', None) or exc}"
    return None


async def close(writer: asyncio.StreamWriter) -> None:
    """Close without waiting on the device more than a moment (TLS close can stall)."""
    with contextlib.suppress(Exception):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), timeout=0.5)
    with contextlib.suppress(Exception):
        if not writer.transport.is_closing():
            writer.transport.abort()


def describe_failure(result: ReadResult, config: ProbeConfig, what: str = "response") -> str:
    """A plain-language problem line for a read that did not complete."""
    size = len(result.data)
    if result.why == "timeout":
        if size == 0:
            return f"no answer within {seconds_text(config.timeout)}"
        return f"{what} incomplete after {seconds_text(config.timeout)} ({size} bytes arrived), cut"
    if result.why == "eof":
        if size == 0:
            return "connection closed without an answer"
        return f"connection closed in the middle of the {what} after {size} bytes"
    if result.why == "reset":
        return "connection reset by the device" + (f" after {size} bytes" if size else "")
    if result.why == "limit":
        return f"{what} over {config.max_response_bytes} bytes, cut"
    return f"read failed ({result.error})"


def _port_budget(config: ProbeConfig) -> float:
    # Main exchange + favicon or redirect each have their own timeout; the TLS handshake too.
    return 3 * config.timeout + 1.0


async def _probe_port(ctx: PortContext) -> None:
    # Imported here: the submodules import this package's plumbing.
    from . import banner, http, rtsp, tls

    if ctx.protocol == "rtsp":
        await rtsp.probe_rtsp(ctx)
    elif ctx.protocol == "tls":
        await tls.probe_tls(ctx)
    elif ctx.protocol == "http":
        await http.probe_http(ctx)
    elif ctx.protocol == "auto" and ctx.port in PRINT_PORTS:
        log.debug("%s tcp/%d: a raw printing port; nothing sent", ctx.address, ctx.port)
    else:
        # telnet/FTP ports should speak first, so listen longer there than on unknown ports.
        longest = 2 * BANNER_WAIT if ctx.protocol in ("telnet", "ftp") else BANNER_WAIT
        if ctx.protocol == "auto" and ctx.port in CLIENT_FIRST_PORTS:
            longest = 0.0
        wait = min(longest, ctx.config.timeout / 4)
        await http.probe_http(ctx, banner_wait=wait, on_banner=banner.record_banner)


async def probe_host(
    address: str,
    ports: Sequence[int],
    config: ProbeConfig,
    *,
    protocols: Mapping[int, str] | None = None,
) -> ProbeReport:
    """Probe every port in ``ports`` on ``address``; never raises (except on cancellation).

    ``protocols`` overrides the port -> protocol map (values from PROTOCOLS), so that tests and
    unusual deployments can say "8081 is RTSP" without root or a rebuild.
    """
    report = ProbeReport()
    try:
        wanted: list[int] = []
        for port in ports:
            if not isinstance(port, int) or not 1 <= port <= 65535:
                report.problems.append(f"port {port!r} is not a TCP port; skipped")
            elif port not in wanted:
                wanted.append(port)
        for port, name in (protocols or {}).items():
            if name not in PROTOCOLS:
                report.problems.append(f"tcp/{port}: unknown protocol {name!r}; probed as 'auto'")
        gate = asyncio.Semaphore(PORT_CONCURRENCY)
        budget = _port_budget(config)

        async def one(port: int) -> None:
            name = protocol_for(port, protocols)
            ctx = PortContext(address, port, name if name in PROTOCOLS else "auto", config, report)
            async with gate:
                try:
                    await asyncio.wait_for(_probe_port(ctx), timeout=budget)
                except TimeoutError:
                    ctx.problem(f"probe stopped after {seconds_text(budget)}")
                except Exception as exc:  # a bug or a device we did not foresee: say it, go on
                    log.debug("probe of %s tcp/%d failed", address, port, exc_info=True)
                    ctx.problem(f"probe failed unexpectedly ({type(exc).__name__}: {exc})")

        tasks = {asyncio.ensure_future(one(port)): port for port in wanted}
        if tasks:
            rounds = math.ceil(len(tasks) / PORT_CONCURRENCY)
            host_budget = min(rounds * budget, HOST_BUDGET_TIMEOUTS * config.timeout + budget)
            done, pending = await asyncio.wait(tasks, timeout=host_budget)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                for task in pending:
                    report.problems.append(
                        f"tcp/{tasks[task]}: not finished, the host's probe time budget of "
                        f"{seconds_text(host_budget)} ran out"
                    )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # never raise into the pipeline: report
        log.debug("probe_host(%s) failed", address, exc_info=True)
        report.problems.append(f"probing stopped unexpectedly ({type(exc).__name__}: {exc})")
    return report

