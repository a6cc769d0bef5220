"""Serve many lab devices from one asyncio process, each on its own address.

Loopback mode: every device is a 127.x address (all of 127.0.0.0/8 is local, lab.md section 6),
with its TCP listeners and unicast UDP sockets; no multicast is ever joined or sent. Namespace
mode (camaudit/lab/netns.py) runs the same farm inside a namespace with ``bind_device`` (macvlans,
lab.md 2.3) and ``multicast_iface`` set, through the module entry point::

    python -m camaudit.lab.farm --spec devices.json [--ready-file PATH] [--port-offset N]

Ports: a device binds its profile's real ports when it may; when binding below 1024 is not
permitted (not root, ``ip_unprivileged_port_start`` above the port), ports below 1024 move up by
:data:`UNPRIVILEGED_PORT_OFFSET` (80 -> 10080, 554 -> 10554) and the manifest's ``ports`` key
records the actual ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..errors import CamauditError, ConfigError, UsageError
from .context import LAB_PASSWORD, LAB_USERNAME, DeviceContext
from .discovery import GROUPS
from .plan import DeviceSpec
from .profiles import Profile, load_profiles
from .servers import TcpService, UdpService

log = logging.getLogger(__name__)

UNPRIVILEGED_PORT_OFFSET = 10000
REQUEST_WAIT = 10.0
SLOW_DELAY = 30.0
UDP_PORTS = {"wsd": 3702, "sadp": 37020, "dhip": 37810}


def default_port_offset(lowest_port: int = 80) -> int:
    """0 when this process may bind ``lowest_port``, else :data:`UNPRIVILEGED_PORT_OFFSET`."""
    if os.geteuid() == 0:
        return 0
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text().strip())
    except (OSError, ValueError):
        start = 1024
    return 0 if lowest_port >= start else UNPRIVILEGED_PORT_OFFSET


def raise_open_file_limit(needed: int) -> None:
    """Lift the soft RLIMIT_NOFILE towards the hard limit (lab.md section 6: EMFILE otherwise)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + 256
    if soft >= want:
        return
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < want:
        log.warning("open-file limit %d is below the %d this lab needs", target, want)


def actual_port(port: int, offset: int) -> int:
    return port + offset if port < 1024 else port


class Farm:
    """The devices of a lab, served from the running event loop until :meth:`stop`."""

    def __init__(self, devices: Sequence[DeviceSpec], *, port_offset: int | None = None,
                 request_wait: float = REQUEST_WAIT, slow_delay: float = SLOW_DELAY,
                 profiles: dict[str, Profile] | None = None) -> None:
        self.profiles = profiles if profiles is not None else load_profiles()
        unknown = sorted({d.profile for d in devices} - set(self.profiles))
        if unknown:
            raise ConfigError(f"unknown lab profile {unknown[0]!r}")
        addresses = [d.address for d in devices]
        if len(set(addresses)) != len(addresses):
            raise ConfigError("two lab devices share an address")
        self.devices = list(devices)
        self.port_offset = default_port_offset() if port_offset is None else port_offset
        self.request_wait = request_wait
        self.slow_delay = slow_delay
        self.contexts: list[DeviceContext] = []
        self._servers: list[asyncio.Server] = []
        self._transports: list[asyncio.DatagramTransport] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self._pending: set[asyncio.TimerHandle] = set()
        self._sockets: list[socket.socket] = []
        self.started = False

    def _context(self, spec: DeviceSpec) -> DeviceContext:
        profile = self.profiles[spec.profile]
        port_map = {port: actual_port(port, self.port_offset) for port, _ in profile.tcp}
        ports: dict[str, int] = {}
        for port, service in profile.tcp:
            ports.setdefault(service, port_map[port])
        for service in profile.udp:
            ports[service] = UDP_PORTS[service]
        return DeviceContext(spec=spec, profile=profile, ports=ports, port_map=port_map)

    def _socket(self, kind: int, spec: DeviceSpec, address: tuple[str, int]) -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        self._sockets.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if spec.bind_device:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, spec.bind_device.encode())
        try:
            sock.bind(address)
        except OSError as exc:
            raise UsageError(
                f"cannot bind lab device {address[0]} port {address[1]}: {exc.strerror}"
                " (is another lab or service using it?)"
            ) from None
        sock.setblocking(False)
        return sock

    def _multicast_socket(self, spec: DeviceSpec, service: str) -> socket.socket:
        """A socket joined to the service's group on ``multicast_iface``, by ifindex (lab.md 4)."""
        assert spec.multicast_iface is not None
        group, port = GROUPS[service]
        sock = self._socket(socket.SOCK_DGRAM, spec, (group, port))
        try:
            ifindex = socket.if_nametoindex(spec.multicast_iface)
        except OSError:
            raise UsageError(f"no interface {spec.multicast_iface!r} for multicast") from None
        mreqn = struct.pack("4s4si", socket.inet_aton(group), socket.inet_aton("0.0.0.0"), ifindex)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        return sock

    def _udp_factory(self, ctx: DeviceContext, service: str,
                     unicast: asyncio.DatagramTransport | None) -> Callable[[], UdpService]:
        reply_via = (lambda: unicast) if unicast is not None else None
        return lambda: UdpService(ctx, service, self.slow_delay, self._pending, reply_via)

    async def start(self) -> None:
        """Bind and serve every device; on any failure release what was bound and raise."""
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        needed = sum(len(self.profiles[d.profile].tcp) + 2 * len(self.profiles[d.profile].udp)
                     for d in self.devices)
        raise_open_file_limit(needed)
        try:
            for spec in self.devices:
                ctx = self._context(spec)
                self.contexts.append(ctx)
                for port, service in ctx.profile.tcp:
                    sock = self._socket(socket.SOCK_STREAM, spec, (spec.address, ctx.port_map[port]))
                    sock.listen(128)
                    handler = TcpService(ctx, service, self._writers, self.request_wait, self.slow_delay)
                    self._servers.append(await asyncio.start_server(handler.handle, sock=sock,
                                                                    limit=64 * 1024))
                for service in ctx.profile.udp:
                    sock = self._socket(socket.SOCK_DGRAM, spec, (spec.address, UDP_PORTS[service]))
                    unicast, _ = await loop.create_datagram_endpoint(
                        self._udp_factory(ctx, service, None), sock=sock)
                    self._transports.append(unicast)
                    if spec.multicast_iface:
                        msock = self._multicast_socket(spec, service)
                        group_t, _ = await loop.create_datagram_endpoint(
                            self._udp_factory(ctx, service, unicast), sock=msock)
                        self._transports.append(group_t)
        except BaseException:
            await self.stop()
            raise
        self.started = True
        log.info("lab: %d devices up in %.2f s", len(self.devices), time.monotonic() - started)

    async def stop(self) -> None:
        """Close every listener, connection and socket; cancel delayed answers."""
        for handle in self._pending:
            handle.cancel()
        self._pending.clear()
        for server in self._servers:
            server.close()
        # Twice: a connection whose accept was in flight gets its writer one loop turn later,
        # and an accepted socket that never reached a handler would outlive the farm.
        for _ in range(2):
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.sleep(0.01)
        for transport in self._transports:
            transport.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        for sock in self._sockets:
            sock.close()  # a no-op for those the transports already closed
        self._servers.clear()
        self._transports.clear()
        self._writers.clear()
        self._sockets.clear()
        await asyncio.sleep(0)  # let transports run their connection_lost callbacks
        self.started = False

    async def __aenter__(self) -> Farm:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def manifest(self) -> list[dict[str, Any]]:
        """The contract of issue 3: one entry per device (extra keys allowed)."""
        entries = []
        for ctx in self.contexts or [self._context(d) for d in self.devices]:
            p, s = ctx.profile, ctx.spec
            entries.append({
                "address": s.address, "profile": p.id, "vendor": p.vendor, "brand": p.brand,
                "device_type": p.device_type, "model": p.model, "firmware": p.firmware,
                "mac": s.mac.lower(), "serial": s.serial,
                "ports": {"tcp": sorted(ctx.port_map.values()),
                          "udp": sorted(UDP_PORTS[u] for u in p.udp)},
                "services": dict(ctx.ports),
                "behaviour": s.behaviour,
                "settings": s.settings,
                "credentials": {"username": LAB_USERNAME, "password": LAB_PASSWORD},
            })  # fmt: skip
        return entries


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write JSON so that a reader never sees half a file."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def load_spec_file(path: str | Path) -> list[DeviceSpec]:
    """A JSON list of device specs (or ``{"devices": [...]}``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read lab spec {str(path)!r}: {exc.strerror}") from None
    except ValueError as exc:
        raise ConfigError(f"lab spec {str(path)!r} is not JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("devices")
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise ConfigError(f"lab spec {str(path)!r} must be a JSON list of device objects")
    return [DeviceSpec.from_json(d) for d in data]


async def serve_until_signalled(farm: Farm, ready_file: str | Path | None = None,
                                on_ready: Callable[[], None] | None = None) -> None:
    """Start ``farm``, write the ready file, call ``on_ready``, serve until SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await farm.start()
        if ready_file is not None:
            write_json_atomic(ready_file, farm.manifest())
        if on_ready is not None:
            on_ready()
        await stop.wait()
    finally:
        await farm.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m camaudit.lab.farm",
                                     description="Serve lab devices from a JSON spec until SIGTERM.")
    parser.add_argument("--spec", required=True, help="JSON list of device specs")
    parser.add_argument("--ready-file", help="write the manifest here once every device is up")
    parser.add_argument("--port-offset", type=int, default=None,
                        help=f"added to ports below 1024 (default: 0 if allowed, else {UNPRIVILEGED_PORT_OFFSET})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        farm = Farm(load_spec_file(args.spec), port_offset=args.port_offset)
        asyncio.run(serve_until_signalled(farm, args.ready_file))
    except CamauditError as exc:
        print(f"camaudit lab farm: error: {exc}", file=sys.stderr)  # noqa: T201
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
