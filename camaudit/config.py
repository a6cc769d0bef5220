"""Configuration: built-in defaults, then an optional TOML file, then command-line overrides,
into frozen dataclasses. ``config/camaudit.toml`` documents every value."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

#: Seconds between a running scan's heartbeats (the ``scans.heartbeat_at`` column).
HEARTBEAT_INTERVAL = 5.0
#: A ``running`` scan whose last heartbeat is older than this many seconds was killed (SIGKILL,
#: a power cut): any command that opens the store marks it ``interrupted``.
STALE_AFTER = 60.0
#: Seconds a scan has, after SIGINT/SIGTERM, to stop in order before its watchdog marks it
#: ``interrupted`` and ends the process (a probe that never yields cannot keep it alive).
STOP_GRACE = 5.0

DEFAULT_PORTS: tuple[int, ...] = (
    21, 23, 80, 81, 88, 443, 554, 2020, 5000, 5554, 8000, 8080, 8443, 8554, 8899,
    34567, 37777, 37778,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SweepConfig:
    ports: tuple[int, ...] = DEFAULT_PORTS
    concurrency: int = 500
    rate: float = 5000.0
    per_host: int = 4
    connect_timeout: float = 1.5
    engine: str = "builtin"  # builtin | nmap


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    timeout: float = 5.0
    max_response_bytes: int = 65536
    body_bytes: int = 4096
    host_concurrency: int = 64


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    enabled: bool = True
    multicast: bool = True  # on interfaces whose network holds a target (never loopback)
    interfaces: tuple[str, ...] = ()
    arp: bool = True  # root only; without root the scan says so once and goes on
    timeout: float = 2.0  # seconds to listen after the last datagram
    rate: float = 2000.0  # datagrams per second


@dataclass(frozen=True, slots=True)
class EgressConfig:
    """``camaudit scan --listener``: an egress check from this vantage, verdicts per host."""

    listeners: tuple[str, ...] = ()  # empty: no egress check in the scan
    dns_zone: str | None = None
    resolvers: tuple[str, ...] = ()  # empty: the system's resolvers
    tcp_ports: tuple[int, ...] = ()  # empty: the defaults (vendor cloud ports included)
    udp_ports: tuple[int, ...] = ()
    timeout: float = 3.0
    control_window: float = 3600.0  # seconds within which a --control run speaks for this one
    # The probes that leave the sensor for its own network rather than for the listener: an SSDP
    # multicast for a UPnP gateway, a NAT-PMP/PCP query to the default gateway, a WPAD lookup,
    # a router solicitation. Inside a camera segment they are the point; elsewhere, turn them off.
    upnp: bool = True
    natpmp: bool = True
    discover_proxy: bool = True
    ra_wait: float = 2.0
    max_hops: int = 6
    skip: tuple[str, ...] = ()  # paths not to probe; a check that skips anything is never CLOSED


@dataclass(frozen=True, slots=True)
class ScanConfig:
    targets: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    allow_public: bool = False
    max_hosts: int = 65_536
    sweep: SweepConfig = field(default_factory=SweepConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    egress: EgressConfig = field(default_factory=EgressConfig)
    sweep_only: bool = False
    db_path: str = "camaudit.db"
    policy_path: str | None = None  # findings policy; None = the shipped config/policy.yaml
    interrogate: bool = True  # read-only ONVIF / ISAPI / Dahua CGI reads of each device
    credentials_path: str | None = None  # the file's path only: secrets never enter the config
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    stale_after: float = STALE_AFTER
    stop_grace: float = STOP_GRACE
    #: The site the scan is recorded under (its own address space in the store).
    site: str = "default"

    def digest(self) -> str:
        """A short hash of everything that shapes the scan, stored with it."""
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def parse_ports(text: str) -> tuple[int, ...]:
    """Parse ``80,443,8000-8010`` into sorted unique ports; ConfigError on anything else."""
    ports: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            if "-" in part:
                low_text, high_text = part.split("-", 1)
                low, high = int(low_text), int(high_text)
                if low > high:
                    raise ValueError
                ports.update(range(low, high + 1))
            else:
                ports.add(int(part))
        except ValueError:
            raise ConfigError(f"{part!r} is not a port or a port range (example: 80,443,8000-8010)") from None
    if not ports:
        raise ConfigError("the port list is empty")
    bad = [p for p in ports if not 1 <= p <= 65535]
    if bad:
        raise ConfigError(f"port {bad[0]} is outside 1-65535")
    return tuple(sorted(ports))


def _check_positive(section: str, name: str, value: Any, *, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"[{section}] {name} must be a positive number, not {value!r}")


def site_name(value: Any, what: str = "--site") -> str:
    """A site name as given, checked: 1-64 letters, digits, '.', '_' or '-'."""
    text = str(value).strip() if isinstance(value, str) else ""
    if not text or len(text) > 64 or not all(c.isalnum() or c in "._-" for c in text):
        raise ConfigError(f"{what} {value!r}: a site name is 1-64 letters, digits, '.', '_' or '-'")
    return text


def _apply(section: str, cls: type[Any], base: Any, values: dict[str, Any]) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    changes: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(f"[{section}] has no setting {key!r}; known: {', '.join(sorted(known))}")
        if key == "ports":
            if isinstance(value, str):
                value = parse_ports(value)
            elif isinstance(value, list | tuple) and all(isinstance(p, int) for p in value):
                value = parse_ports(",".join(str(p) for p in value))
            else:
                raise ConfigError(f"[{section}] ports must be a list of port numbers")
        elif key in ("tcp_ports", "udp_ports"):
            if isinstance(value, str):
                value = parse_ports(value)
            elif isinstance(value, list | tuple) and all(isinstance(p, int) for p in value):
                value = parse_ports(",".join(str(p) for p in value)) if value else ()
            else:
                raise ConfigError(f"[{section}] {key} must be a list of port numbers")
        elif key == "site":
            value = site_name(value, f"[{section}] site")
        elif key in ("listeners", "resolvers", "skip"):
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"[{section}] {key} must be a list of addresses")
            value = tuple(value)
        elif key == "dns_zone":
            if not isinstance(value, str) or not value.strip(". "):
                raise ConfigError(f"[{section}] dns_zone must be a DNS name such as egress.example.org")
        elif key == "interfaces":
            if isinstance(value, str):
                value = (value,)
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"[{section}] interfaces must be a list of interface names")
            value = tuple(value)
        elif key == "engine":
            if value not in ("builtin", "nmap"):
                raise ConfigError(f"[{section}] engine must be 'builtin' or 'nmap', not {value!r}")
        elif isinstance(getattr(base, key), bool):
            if not isinstance(value, bool):
                raise ConfigError(f"[{section}] {key} must be true or false")
        elif isinstance(getattr(base, key), int | float):
            _check_positive(section, key, value, allow_zero=key in ("rate", "ra_wait", "max_hops"))
            value = type(getattr(base, key))(value)
        changes[key] = value
    return dataclasses.replace(base, **changes)


def load_config(path: str | Path | None = None, **overrides: Any) -> ScanConfig:
    """Defaults, then the TOML file at ``path`` (if any), then ``overrides``.

    ``overrides`` are flat names: ``ports``, ``concurrency``, ``rate``, ``per_host``,
    ``connect_timeout``, ``engine`` go to the sweep; ``probe_timeout`` to the probes; the rest
    to the scan itself. ``None`` values are ignored (an option the user did not give).
    """
    config = ScanConfig()
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {str(path)!r}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"configuration file {str(path)!r} is not valid TOML: {exc}") from exc
        unknown = set(data) - {"scan", "probe", "discovery", "egress"}
        if unknown:
            raise ConfigError(f"configuration file {str(path)!r} has unknown section [{sorted(unknown)[0]}]")
        scan_values = dict(data.get("scan", {}))
        sweep_keys = {f.name for f in dataclasses.fields(SweepConfig)}
        sweep_values = {k: scan_values.pop(k) for k in list(scan_values) if k in sweep_keys}
        config = dataclasses.replace(
            _apply("scan", ScanConfig, config, {k: v for k, v in scan_values.items()}),
            sweep=_apply("scan", SweepConfig, config.sweep, sweep_values),
            probe=_apply("probe", ProbeConfig, config.probe, dict(data.get("probe", {}))),
            discovery=_apply("discovery", DiscoveryConfig, config.discovery, dict(data.get("discovery", {}))),
            egress=_apply("egress", EgressConfig, config.egress, dict(data.get("egress", {}))),
        )
    sweep_over = {k: v for k, v in overrides.items() if v is not None and k in _SWEEP_KEYS}
    probe_over = {
        k.removeprefix("probe_"): v for k, v in overrides.items() if v is not None and k.startswith("probe_")
    }
    egress_over = {
        k.removeprefix("egress_"): (tuple(v) if isinstance(v, list) else v)
        for k, v in overrides.items()
        if v is not None and k.startswith("egress_")
    }
    discovery_over = {
        k.removeprefix("discovery_"): (tuple(v) if isinstance(v, list) else v)
        for k, v in overrides.items()
        if v is not None and k.startswith("discovery_")
    }
    scan_over: dict[str, Any] = {
        k: (tuple(v) if isinstance(v, list) else v)
        for k, v in overrides.items()
        if v is not None and k not in _SWEEP_KEYS and not k.startswith(("probe_", "discovery_", "egress_"))
    }
    config = dataclasses.replace(
        config,
        **scan_over,
        sweep=_apply("option", SweepConfig, config.sweep, sweep_over),
        probe=_apply("option", ProbeConfig, config.probe, probe_over),
        discovery=_apply("option", DiscoveryConfig, config.discovery, discovery_over),
        egress=_apply("option", EgressConfig, config.egress, egress_over),
    )
    if config.stale_after <= 2 * config.heartbeat_interval:
        # A live scan must never look dead: leave room for a late heartbeat or two.
        raise ConfigError(f"[scan] stale_after ({config.stale_after:g} s) must be more than twice "
                          f"heartbeat_interval ({config.heartbeat_interval:g} s)")
    return config


_SWEEP_KEYS = {f.name for f in dataclasses.fields(SweepConfig)}


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """Many sites (camaudit.fleet): the defaults of a fleet file's ``[limits]`` and ``[jetstream]``.

    ``config/fleet.example.toml`` documents each value; ``camaudit fleet init`` writes them into
    the files it generates, where they can be changed per fleet.
    """

    server: str = "nats://127.0.0.1:4222"  # the URL agents and the centre connect to
    connect_timeout: float = 5.0  # seconds for one connection attempt to the NATS server
    request_timeout: float = 10.0  # seconds for one JetStream API request (create, info, put)
    retry_initial: float = 1.0  # first pause after a failed connection (agents), doubled each time
    retry_max: float = 60.0  # longest pause between two connection attempts
    max_bundle_bytes: int = 256 * 1024 * 1024  # largest evidence bundle accepted, file or object
    bucket_max_bytes: int = 2 * 1024 * 1024 * 1024  # room for one site's bundles on the server
    job_max_age: float = 7 * 86400.0  # seconds a queued job waits for its agent before it is dropped
    job_duplicate_window: float = 6 * 3600.0  # seconds within which a repeated job message id runs once
    job_ack_wait: float = 300.0  # seconds an agent may go without a progress note before redelivery
    job_max_deliver: int = 5  # deliveries of one job before it is given up
    heartbeat_interval: float = 30.0  # seconds between an agent's heartbeats
    heartbeat_stale_after: float = 180.0  # an agent silent this long is shown as stale
