"""TCP port sweeps: the result type both engines return, their shared checks, and the dispatcher.

Two engines sweep the camera port list with plain TCP connects (no raw packets):

* ``builtin`` (:func:`camaudit.discovery.tcp.sweep`): a non-blocking connect loop on epoll,
  split across one worker process per core for large sweeps;
* ``nmap`` (:func:`camaudit.discovery.nmap.nmap_sweep`): ``nmap -sT`` driven through
  python-nmap, for users who trust nmap's results or want to compare.

Both take the same :class:`~camaudit.config.SweepConfig` and return the same
:class:`SweepResult`; on the same targets they find the same open ports (tested on loopback).
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..config import SweepConfig
from ..errors import ConfigError, ScopeError

OnOpen = Callable[[str, int], None]
Progress = Callable[[int, int], None]


@dataclass
class SweepResult:
    """What a sweep found. ``open_ports`` holds only addresses with at least one open port."""

    open_ports: dict[str, list[int]]  # address -> sorted open TCP ports
    addresses: int  # addresses swept
    probes: int  # connection attempts made
    elapsed: float  # seconds
    notes: list[str] = field(default_factory=list)  # plain-language facts for the user
    interrupted: bool = False

    @property
    def open_count(self) -> int:
        return sum(len(ports) for ports in self.open_ports.values())


def check_sweep_config(config: SweepConfig) -> None:
    """Raise :class:`ConfigError` with a one-line message for a config no engine can run."""
    ports = config.ports
    if not ports:
        raise ConfigError("the sweep port list is empty")
    for port in ports:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"sweep port {port!r} is not a TCP port number (1-65535)")
    _check_number("concurrency", config.concurrency, integer=True)
    _check_number("per_host", config.per_host, integer=True)
    _check_number("connect_timeout", config.connect_timeout)
    _check_number("rate", config.rate, allow_zero=True)
    if config.engine not in ("builtin", "nmap"):
        raise ConfigError(f"sweep engine must be 'builtin' or 'nmap', not {config.engine!r}")


def _check_number(name: str, value: object, *, integer: bool = False, allow_zero: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = isinstance(value, int) or float(value).is_integer()  # type: ignore[arg-type]
    if ok:
        assert isinstance(value, int | float)
        ok = value > 0 or (allow_zero and value == 0)
    if not ok:
        kind = "a whole number" if integer else "a number"
        floor = "0 or more" if allow_zero else "above 0"
        raise ConfigError(f"sweep setting {name} must be {kind} {floor}, not {value!r}")


def normalise_addresses(addresses: Sequence[str]) -> list[str]:
    """Check every address is an IP literal; return them canonical, duplicates dropped, in order.

    Raises :class:`ScopeError` naming the first bad entry (targets are expanded by scope.py
    before a sweep; a name or a network here is a caller's mistake worth a clear message).
    """
    if isinstance(addresses, str):
        addresses = [addresses]
    seen: dict[str, None] = {}
    for text in addresses:
        if isinstance(text, str):
            # Fast path for a /16 of targets: inet_pton accepts only the canonical dotted quad.
            try:
                socket.inet_pton(socket.AF_INET, text)
            except OSError:
                pass
            else:
                seen.setdefault(text, None)
                continue
        try:
            canonical = str(ipaddress.ip_address(str(text).strip()))
        except ValueError:
            raise ScopeError(f"{text!r} is not an IP address (the sweep takes single addresses)") from None
        seen.setdefault(canonical, None)
    return list(seen)


def run_sweep(
    engine: str | None,
    addresses: Sequence[str],
    config: SweepConfig,
    *,
    on_open: OnOpen | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> SweepResult:
    """Sweep with ``engine`` (``builtin`` or ``nmap``; ``None`` means ``config.engine``)."""
    name = config.engine if engine is None else engine
    if name == "builtin":
        from .tcp import sweep

        return sweep(addresses, config, on_open=on_open, progress=progress, stop=stop)
    if name == "nmap":
        from .nmap import nmap_sweep

        return nmap_sweep(addresses, config, on_open=on_open, progress=progress, stop=stop)
    raise ConfigError(f"sweep engine must be 'builtin' or 'nmap', not {name!r}")
