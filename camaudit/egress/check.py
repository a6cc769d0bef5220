"""``egress check``: plan the paths, run every probe at once (rate-limited, bounded in time),
and return the run with its evidence. The library entry point the CLI and ``scan --listener`` use.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import yaml

from ..errors import ConfigError, UsageError
from ..model import utc_now
from ..resources import signatures_dir
from . import active, gateway, wire
from .active import Timing
from .results import ALLOWED, UNKNOWN, ActiveResult, PathResult
from .vantage import gather, ipv6_enabled_interfaces, parse_proxy, proxy_from_environment

log = logging.getLogger(__name__)

MAX_PORTS = 256


@lru_cache(maxsize=1)
def cloud_endpoints() -> dict[str, Any]:
    """signatures/egress/cloud_endpoints.yaml (default ports, vendor names, opt-in probes)."""
    path = signatures_dir() / "egress" / "cloud_endpoints.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the egress endpoint list {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"the egress endpoint list {path} is not a mapping")
    return doc


def default_ports(proto: str) -> list[int]:
    return [int(entry["port"]) for entry in cloud_endpoints()["default_ports"][proto]]


def parse_port_list(text: str, what: str) -> list[int]:
    """``80,443,8000-8010`` -> ports; UsageError on anything else."""
    ports: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                lo, hi = (int(x) for x in part.split("-", 1))
                if hi < lo:
                    raise ValueError
                ports.extend(range(lo, hi + 1))
            else:
                ports.append(int(part))
        except ValueError:
            raise UsageError(f"{what}: {part!r} is not a port or a range such as 8000-8010") from None
    bad = [p for p in ports if not 0 < p < 65536]
    if bad:
        raise UsageError(f"{what}: {bad[0]} is not a port number (1-65535)")
    ports = list(dict.fromkeys(ports))
    if len(ports) > MAX_PORTS:
        raise UsageError(f"{what}: {len(ports)} ports is more than {MAX_PORTS}; probe fewer")
    return ports


@dataclass(slots=True)
class CheckOptions:
    """What an ``egress check`` run tests. Listener addresses: one IPv4 and/or one IPv6."""

    listeners: list[str]
    tcp_ports: list[int] = field(default_factory=lambda: default_ports("tcp"))
    udp_ports: list[int] = field(default_factory=lambda: default_ports("udp"))
    dns_zone: str | None = None
    resolvers: list[str] | None = None  # None: the system's (/etc/resolv.conf)
    gateway: str | None = None  # None: the default route's
    proxy: str | None = None  # host:port; None: environment, then WPAD
    discover_proxy: bool = True
    proxy_port: int = 443
    control: bool = False
    segment: str | None = None
    timeout: float = 3.0
    udp_tries: int = 2
    rate: float = 50.0  # probe starts per second
    max_hops: int = 6
    ra_wait: float = 2.0
    ssdp_wait: float = 2.0
    upnp: bool = True
    natpmp: bool = True
    trace: bool = True
    vendor_clouds: bool = False
    deadline: float = 60.0
    #: Paths (or prefixes such as ``udp/``) not to probe; they end ``unknown``, so a check that
    #: skips anything can never be CLOSED.
    skip: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if not self.listeners:
            raise UsageError("name the listener with --listener ADDR (the host running `camaudit egress listen`)")
        fams = []
        for addr in self.listeners:
            try:
                fams.append(ipaddress.ip_address(addr).version)
            except ValueError:
                raise UsageError(f"--listener {addr!r} is not an IP address") from None
        if len(fams) != len(set(fams)) or len(fams) > 2:
            raise UsageError("give at most one IPv4 and one IPv6 --listener address")
        for r in self.resolvers or []:
            try:
                ipaddress.ip_address(r)
            except ValueError:
                raise UsageError(f"--resolver {r!r} is not an IP address") from None
        if self.dns_zone is not None and not all(0 < len(x) < 64 for x in self.dns_zone.strip(".").split(".")):
            raise UsageError(f"--dns-zone {self.dns_zone!r} is not a DNS name")
        if not 0.2 <= self.timeout <= 30:
            raise UsageError("--timeout must be between 0.2 and 30 seconds")
        if self.rate <= 0:
            raise UsageError("--rate must be positive")

    def to_json(self) -> dict[str, Any]:
        return {
            "listeners": self.listeners, "tcp_ports": self.tcp_ports, "udp_ports": self.udp_ports,
            "dns_zone": self.dns_zone, "resolvers": self.resolvers, "gateway": self.gateway, "proxy": self.proxy,
            "control": self.control, "timeout": self.timeout, "udp_tries": self.udp_tries, "rate": self.rate,
            "max_hops": self.max_hops, "upnp": self.upnp, "natpmp": self.natpmp, "vendor_clouds": self.vendor_clouds,
            "skip": self.skip,
        }  # fmt: skip


Job = tuple[str, Callable[[], PathResult]]


def _ipv4_listener(opts: CheckOptions) -> str | None:
    return next((a for a in opts.listeners if not active.is_ipv6(a)), None)


def _ipv6_listener(opts: CheckOptions) -> str | None:
    return next((a for a in opts.listeners if active.is_ipv6(a)), None)


def _ipv6_plan(opts: CheckOptions, vantage: Any, timing: Timing, notes: list[str]) -> tuple[list[Job], list[PathResult]]:
    """The IPv6 paths: tested when a router advertises a global prefix (or the kernel already
    holds a global address and default route from one), absent when none does."""
    listener6 = _ipv6_listener(opts)
    advertised: list[dict[str, Any]] = []
    if not vantage.ipv6_enabled:
        return [], [gateway.no_ipv6("IPv6 is disabled on this sensor, so router advertisements cannot be seen; "
                                    "enable it on the segment interface to test the IPv6 path", basis="error")]
    interfaces = ipv6_enabled_interfaces()
    heard = gateway.listen_router_advertisements(interfaces, opts.ra_wait) if opts.ra_wait > 0 else None
    if heard is None:
        notes.append("no router solicitation sent (not root, or --ra-wait 0): IPv6 judged from the kernel's state")
    else:
        advertised = [ra for ra in heard if ra["router_lifetime"] > 0 and any(
            gateway.is_global_prefix(p) for p in ra["prefixes"])]
    kernel = bool(vantage.ipv6_global) and vantage.ipv6_default_route
    if not advertised and not kernel:
        waited = f"in {opts.ra_wait:g} s after a router solicitation" if heard is not None else "in the kernel's state"
        return [], [gateway.no_ipv6(f"no router advertisement with a global prefix and a default router {waited}; "
                                    "no global IPv6 address with a default route")]
    notes.append("IPv6: " + ("; ".join(f"router {ra['router']} advertises {', '.join(ra['prefixes'])}" for ra in advertised)
                             or f"global address(es) {', '.join(vantage.ipv6_global)} with a default route"))
    if listener6 is None:
        missing = PathResult(path="ipv6/tcp", result=UNKNOWN, basis="not-tested",
                             detail="a router offers an IPv6 route, but no IPv6 listener address was given "
                                    "(--listener with an IPv6 address)")
        return [], [missing]
    jobs: list[Job] = []
    for port in opts.tcp_ports:
        jobs.append((f"ipv6/tcp/{port}", functools.partial(active.probe_tcp, f"ipv6/tcp/{port}", listener6, port, timing)))
    for port in opts.udp_ports:
        jobs.append((f"ipv6/udp/{port}", functools.partial(active.probe_udp, f"ipv6/udp/{port}", listener6, port, timing)))
    jobs.append(("ipv6/icmp", lambda: active.probe_icmp("ipv6/icmp", listener6, timing)))
    return jobs, []


def run_egress_check(opts: CheckOptions) -> ActiveResult:
    """Run every planned probe and return the run (not yet judged: see :mod:`.verdict`)."""
    opts.validate()
    timing = Timing(timeout=opts.timeout, udp_tries=opts.udp_tries)
    listener4 = _ipv4_listener(opts)
    first = listener4 or opts.listeners[0]
    vantage = gather(first, resolvers=opts.resolvers, gateway=opts.gateway)
    started = utc_now()
    t0 = time.monotonic()
    notes: list[str] = []
    fixed: list[PathResult] = []
    jobs: list[Job] = []

    if listener4 is not None:
        for port in opts.tcp_ports:
            jobs.append((f"tcp/{port}", functools.partial(active.probe_tcp, f"tcp/{port}", listener4, port, timing)))
        for port in opts.udp_ports:
            jobs.append((f"udp/{port}", functools.partial(active.probe_udp, f"udp/{port}", listener4, port, timing)))
        jobs.append(("icmp", lambda: active.probe_icmp("icmp", listener4, timing)))
        jobs.append(("ntp", lambda: active.probe_ntp(listener4, timing)))
        jobs.append(("dns/direct", lambda: active.probe_dns("dns/direct", listener4, opts.dns_zone, timing,
                                                             via_resolver=False)))
    else:
        notes.append("no IPv4 listener address: only IPv6 paths were tested")
    if vantage.resolvers:
        resolver = vantage.resolvers[0]
        jobs.append(("dns/resolver", lambda: active.probe_dns("dns/resolver", resolver, opts.dns_zone, timing,
                                                               via_resolver=True)))
    else:
        fixed.append(active.no_resolver("dns/resolver"))

    proxy, how = None, "none configured; WPAD not tried"
    if opts.proxy:
        proxy, how = parse_proxy(opts.proxy), "--proxy"
        if proxy is None:
            raise UsageError(f"--proxy {opts.proxy!r}: give HOST:PORT")
    elif (env := proxy_from_environment()) is not None:
        proxy, how = env, "environment"
    elif opts.discover_proxy:
        proxy, how = active.discover_wpad(min(opts.timeout, 2.0)), "WPAD"
        how = "WPAD (http://wpad/wpad.dat)" if proxy else "none in the environment; WPAD found none"
    jobs.append(("proxy", lambda: active.probe_proxy(proxy, first, opts.proxy_port, timing, how)))

    if opts.upnp:
        jobs.append(("upnp", lambda: gateway.probe_upnp(vantage.gateway, timing, opts.ssdp_wait)))
    if opts.natpmp:
        jobs.append(("natpmp", lambda: gateway.probe_natpmp(vantage.gateway, timing)))

    v6_jobs, v6_fixed = _ipv6_plan(opts, vantage, timing, notes)
    jobs += v6_jobs
    fixed += v6_fixed

    if opts.skip:
        skipped = [name for name, _ in jobs if _skipped(name, opts.skip)]
        jobs = [(name, fn) for name, fn in jobs if name not in skipped]
        fixed += [PathResult(path=name, result=UNKNOWN, basis="not-tested", detail="skipped by the operator (--skip)")
                  for name in skipped]
    planned = [name for name, _ in jobs] + [p.path for p in fixed]
    results: dict[str, PathResult] = {p.path: p for p in fixed}
    route: dict[str, Any] | None = None
    limiter = active.RateLimiter(opts.rate)
    pool = ThreadPoolExecutor(max_workers=min(64, len(jobs) + 1), thread_name_prefix="egress")
    try:
        futures: dict[str, Future[PathResult]] = {}
        trace_future: Future[dict[str, Any]] | None = None
        if opts.trace and opts.max_hops > 0:
            trace_future = pool.submit(active.trace, first, opts.max_hops, min(opts.timeout, 2.0))
        for name, fn in jobs:
            if time.monotonic() - t0 > opts.deadline:
                break
            limiter.wait()
            futures[name] = pool.submit(fn)
        left = max(0.0, opts.deadline - (time.monotonic() - t0))
        wait_futures(list(futures.values()), timeout=left)
        for name, fut in futures.items():
            if fut.done() and fut.exception() is None:
                results[name] = fut.result()
            elif fut.done():
                log.warning("egress probe %s failed: %s", name, fut.exception())
                results[name] = PathResult(path=name, result=UNKNOWN, basis="error",
                                           detail=f"the probe failed: {fut.exception()}")
            else:
                results[name] = PathResult(path=name, result=UNKNOWN, basis="not-tested",
                                           detail=f"not finished within the {opts.deadline:g} s time limit")
        if trace_future is not None:
            try:
                route = trace_future.result(timeout=max(0.1, opts.deadline - (time.monotonic() - t0)))
            except Exception as exc:  # an indicator only: never let it sink the run
                notes.append(f"TTL-stepped probes did not finish: {exc}")
    finally:
        pool.shutdown(wait=False, cancel_futures=True)

    notes += listener_disagreements(opts, [results[name] for name in planned if name in results])
    vendor = vendor_cloud_probes(timing) if opts.vendor_clouds else None
    if vendor is not None:
        notes.append("vendor clouds probed (opt-in); shown beside the paths, not used for the verdict")
    run = ActiveResult(
        run_id=str(uuid.uuid4()),
        control=opts.control,
        listeners=list(opts.listeners),
        vantage=vantage.to_json(),
        started_at=started,
        finished_at=utc_now(),
        planned=planned,
        paths=[results[name] for name in planned if name in results],
        route=route if vendor is None else {**(route or {}), "vendor_clouds": vendor},
        notes=notes,
        segment=opts.segment or vantage.network,
    )
    return run


def listener_disagreements(opts: CheckOptions, paths: list[PathResult]) -> list[str]:
    """Notes where this check's options disagree with what the listener said it serves (in the
    answers that came back: :class:`.wire.ListenerFacts`). A listener that answered nothing, or
    an older one that says nothing, gives no notes."""
    facts: dict[str, wire.ListenerFacts] = {}
    for p in paths:
        said = wire.ListenerFacts.from_json(p.extra.get("listener")) if p.result == ALLOWED else None
        if said is not None:
            facts.setdefault(p.dst, said)
    notes: list[str] = []
    zones = {f.zone for f in facts.values() if f.zone}
    ours = opts.dns_zone.strip(".").lower() if opts.dns_zone else None
    resolved = any(p.path == "dns/resolver" and p.result == ALLOWED for p in paths)
    for zone in sorted(zones):
        if resolved:
            break  # the nonce came back through the resolver: that path was tested, whatever the zones
        if ours is None:
            notes.append(f"the listener serves zone {zone} but this check was run without --dns-zone: "
                         "the resolver path was not tested")
        elif ours != zone and not ours.endswith("." + zone):
            notes.append(f"the listener serves zone {zone} but this check used --dns-zone {ours}: the resolver "
                         f"path asked for a zone the listener does not serve, so its result says nothing")
    unserved: list[str] = []
    for p in paths:
        said = facts.get(p.dst)
        if said is None or p.result == ALLOWED or p.port is None or p.proto not in ("tcp", "udp"):
            continue
        ports = said.tcp if p.proto == "tcp" else said.udp
        if ports is not None and p.port not in ports:
            where = f"{p.proto}/{p.port}"
            unserved.append(where if p.path == where else f"{where} ({p.path})")
    if unserved:
        listed = ", ".join(unserved[:12]) + (f" and {len(unserved) - 12} more" if len(unserved) > 12 else "")
        notes.append(f"the listener does not listen on {listed}, which this check probed: a 'blocked' there "
                     "says nothing (unless the listener host redirects that port to a port it serves, "
                     "e.g. with nftables)")
    return notes


def _skipped(name: str, skip: list[str]) -> bool:
    return any(name == s or (s.endswith("/") and name.startswith(s)) for s in skip)


def vendor_cloud_probes(timing: Timing) -> list[dict[str, Any]]:
    """Opt-in: a TCP handshake to each vendor registration endpoint (third-party hosts; never by
    default: reference/egress.md 1.3). Informational: a handshake could be a transparent proxy."""
    import socket

    out = []
    for entry in cloud_endpoints().get("vendor_probes") or []:
        name, port = str(entry["name"]), int(entry["port"])
        started = utc_now()
        try:
            with socket.create_connection((name, port), timeout=timing.timeout) as conn:
                peer = conn.getpeername()[0]
            out.append({"name": name, "port": port, "result": "handshake", "peer": peer, "at": started})
        except OSError as exc:
            out.append({"name": name, "port": port, "result": "failed", "error": str(exc), "at": started})
    return out
