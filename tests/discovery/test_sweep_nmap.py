"""The nmap engine against real listeners on loopback (127.50.0.0/16), and against the built-in
engine on the same targets: both must find exactly the same open ports.

Tests that run nmap skip with the reason when the nmap program is not installed.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from camaudit.config import SweepConfig
from camaudit.discovery.nmap import nmap_command, nmap_sweep
from camaudit.discovery.sweep import run_sweep
from camaudit.discovery.tcp import sweep
from camaudit.errors import ConfigError, DependencyError, ScopeError
from camaudit.lab.listeners import Listeners as Farm

needs_nmap = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed (apt install nmap)")

PORTS = (18000, 18080, 18554, 18443, 18899)


@pytest.fixture
def farm() -> Iterator[Farm]:
    with Farm() as f:
        yield f


def child_pids() -> list[int]:
    """PIDs whose parent is this process (nmap, setpriv), zombies excluded."""
    me = str(os.getpid())
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text(encoding="ascii")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[1] == me and fields[0] != "Z":
            found.append(int(entry))
    return found


@needs_nmap
def test_nmap_finds_exactly_the_open_ports(farm: Farm) -> None:
    farm.listen("127.50.20.1", 18000)
    farm.listen("127.50.20.1", 18899)
    farm.listen("127.50.20.2", 18554)
    calls: list[tuple[str, int]] = []
    ticks: list[tuple[int, int]] = []
    result = nmap_sweep(
        ["127.50.20.1", "127.50.20.2", "127.50.20.3"],
        SweepConfig(ports=PORTS),
        on_open=lambda a, p: calls.append((a, p)),
        progress=lambda done, total: ticks.append((done, total)),
    )
    assert result.open_ports == {"127.50.20.1": [18000, 18899], "127.50.20.2": [18554]}
    assert sorted(calls) == [("127.50.20.1", 18000), ("127.50.20.1", 18899), ("127.50.20.2", 18554)]
    assert (result.addresses, result.probes, result.interrupted) == (3, 15, False)
    assert ticks[-1] == (15, 15)
    assert any("per_host was not applied" in note for note in result.notes)
    assert child_pids() == []


@needs_nmap
def test_both_engines_find_the_same_ports(farm: Farm) -> None:
    addresses = [str(a) for a in ipaddress.ip_network("127.50.21.0/24")]
    for i in range(40):
        farm.listen(addresses[i * 37 % 256], PORTS[i % len(PORTS)])
    targets = list(addresses)
    try:  # and one IPv6 target, which nmap scans in a second run (-6), where ::1 is usable
        farm.listen("::1", 18443)
        targets.append("::1")
    except OSError:
        pass
    config = SweepConfig(ports=PORTS, rate=0, concurrency=200)
    builtin = sweep(targets, config)
    by_nmap = run_sweep("nmap", targets, config)
    assert builtin.open_ports == by_nmap.open_ports == farm.open
    assert builtin.addresses == by_nmap.addresses == len(targets)


@needs_nmap
def test_nmap_honours_the_rate_cap() -> None:
    # 40 addresses x 5 closed ports = 200 probes at --max-rate 100: about 2 s.
    started = time.monotonic()
    result = nmap_sweep([f"127.50.22.{i}" for i in range(1, 41)], SweepConfig(ports=PORTS, rate=100))
    assert time.monotonic() - started >= 1.8
    assert result.open_ports == {}


@needs_nmap
def test_stop_ends_nmap_promptly_and_keeps_what_it_reported(farm: Farm) -> None:
    farm.listen("127.50.23.1", 18000)
    stop = threading.Event()
    found: list[tuple[str, int]] = []

    def on_open(address: str, port: int) -> None:
        found.append((address, port))
        threading.Timer(0.2, stop.set).start()  # stop once the first open port was reported

    addresses = [str(a) for a in ipaddress.ip_network("127.50.24.0/22")]
    started = time.monotonic()
    threading.Timer(5.0, stop.set).start()  # a bound in case nmap never reports
    result = nmap_sweep(["127.50.23.1", *addresses], SweepConfig(ports=PORTS, rate=300), on_open=on_open, stop=stop)
    assert time.monotonic() - started < 6.0  # 5,125 probes at 300/s would take 17 s
    assert result.interrupted
    assert found == [("127.50.23.1", 18000)]
    assert result.open_ports == {"127.50.23.1": [18000]}
    assert any("stopped early" in note for note in result.notes)
    assert child_pids() == []


def test_missing_nmap_is_a_dependency_error_with_a_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no nmap on PATH
    with pytest.raises(DependencyError, match="apt install nmap"):
        nmap_sweep(["127.50.25.1"], SweepConfig(ports=PORTS))


def test_bad_input_is_refused_before_nmap_runs() -> None:
    with pytest.raises(ConfigError):
        nmap_sweep(["127.50.25.1"], SweepConfig(ports=PORTS, per_host=0))
    with pytest.raises(ScopeError):
        nmap_sweep(["camera.example"], SweepConfig(ports=PORTS))


def test_config_maps_to_nmap_flags() -> None:
    def flags(config: SweepConfig) -> list[str]:
        cmd = nmap_command("/usr/bin/nmap", config, "t.txt", "o.xml", ipv6=False)
        return cmd[cmd.index("/usr/bin/nmap") :]

    default = flags(SweepConfig(ports=(80, 8000), concurrency=300, rate=0, connect_timeout=1.5))
    assert default[:6] == ["/usr/bin/nmap", "-sT", "-Pn", "-n", "-T4", "--open"]
    assert default[default.index("-p") + 1] == "80,8000"
    assert default[default.index("--max-parallelism") + 1] == "300"
    assert default[default.index("--max-rtt-timeout") + 1] == "1500ms"
    assert "--max-rate" not in default
    assert default[-4:] == ["-iL", "t.txt", "-oX", "o.xml"]
    tight = flags(SweepConfig(ports=(80,), rate=250, connect_timeout=0.05))
    assert tight[tight.index("--max-rate") + 1] == "250"
    assert [tight[tight.index(f) + 1] for f in ("--max-rtt-timeout", "--initial-rtt-timeout", "--min-rtt-timeout")] == [
        "50ms",
        "50ms",
        "50ms",
    ]
    assert "-6" in nmap_command("/usr/bin/nmap", SweepConfig(), "t", "o", ipv6=True)
