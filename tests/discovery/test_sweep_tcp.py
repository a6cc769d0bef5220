"""The built-in connect sweep against real listeners on loopback (127.50.0.0/16, this module's block).

Each test uses its own /24 inside 127.50.0.0/16 so that tests never see each other's listeners.
Limits are checked from outside the scanner: the kernel's socket table (/proc/net/tcp) shows how
many connects are in flight to an address, and wall time bounds the rate.
"""

from __future__ import annotations

import gc
import ipaddress
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from scratch_netns import python_in, scratch_namespace

from camaudit.config import SweepConfig
from camaudit.discovery import tcp
from camaudit.discovery.sweep import SweepResult, run_sweep
from camaudit.discovery.tcp import sweep
from camaudit.errors import ConfigError, ScanFailed, ScopeError
from camaudit.lab.listeners import Listeners as Farm

PORTS = (18000, 18080, 18554, 18443)


@pytest.fixture
def farm() -> Iterator[Farm]:
    with Farm() as f:
        yield f


def hanging_port(address: str, port: int, keep: list[socket.socket]) -> None:
    """A port whose connects stay in SYN-SENT: a listener with a full accept queue drops SYNs."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((address, port))
    listener.listen(0)
    filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    filler.connect((address, port))  # fills the queue of one; nobody accepts it
    keep += [listener, filler]


def syn_sent_to(addresses: set[str]) -> int:
    """How many sockets on this machine are in SYN-SENT towards ``addresses`` right now."""
    count = 0
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            if fields[3] != "02":
                continue
            remote = fields[2].split(":")[0]
            address = str(ipaddress.IPv4Address(bytes.fromhex(remote)[::-1]))
            if address in addresses:
                count += 1
    return count


def open_fds() -> int:
    gc.collect()  # so that sockets an earlier test dropped are not closed mid-measurement
    return len(os.listdir("/proc/self/fd"))


def fds_settle_to(expected: int) -> int:
    """The open-fd count once the farm's drain thread has closed what it was accepting.

    Tests assert it is at most the count before the sweep: fewer is fine (garbage from earlier
    tests collected meanwhile), more would be a socket the sweep left behind.
    """
    deadline = time.monotonic() + 1.0
    count = open_fds()
    while count > expected and time.monotonic() < deadline:
        time.sleep(0.02)
        count = open_fds()
    return count


def addresses_in(network: str) -> list[str]:
    return [str(a) for a in ipaddress.ip_network(network)]


# --- correctness -------------------------------------------------------------------------------


def test_finds_exactly_the_open_ports(farm: Farm) -> None:
    farm.listen("127.50.1.1", 18000)
    farm.listen("127.50.1.1", 18554)
    farm.listen("127.50.1.2", 18080)
    calls: list[tuple[str, int]] = []
    ticks: list[tuple[int, int]] = []
    main_thread = threading.get_ident()
    threads: set[int] = set()

    def on_open(address: str, port: int) -> None:
        calls.append((address, port))
        threads.add(threading.get_ident())

    result = sweep(
        ["127.50.1.1", "127.50.1.2", "127.50.1.3"],
        SweepConfig(ports=PORTS),
        on_open=on_open,
        progress=lambda done, total: ticks.append((done, total)),
    )
    assert result.open_ports == {"127.50.1.1": [18000, 18554], "127.50.1.2": [18080]}
    assert sorted(calls) == [("127.50.1.1", 18000), ("127.50.1.1", 18554), ("127.50.1.2", 18080)]
    assert threads == {main_thread}
    assert (result.addresses, result.probes, result.interrupted) == (3, 12, False)
    assert result.notes == []
    assert ticks[-1] == (12, 12)
    assert result.elapsed > 0


def test_duplicate_addresses_and_ports_are_swept_once(farm: Farm) -> None:
    farm.listen("127.50.2.1", 18000)
    result = sweep(["127.50.2.1", " 127.50.2.1 ", "127.50.2.1"], SweepConfig(ports=(18000, 18000)))
    assert result.addresses == 1
    assert result.probes == 1
    assert result.open_ports == {"127.50.2.1": [18000]}


def test_large_sweep_in_worker_processes_finds_exactly_the_listeners(farm: Farm) -> None:
    # 8192 addresses x 4 ports: large enough that the sweep splits across processes.
    addresses = addresses_in("127.50.32.0/19")
    expected_pairs = {(addresses[i * 97 % len(addresses)], PORTS[i % len(PORTS)]) for i in range(60)}
    for address, port in sorted(expected_pairs):
        farm.listen(address, port)
    config = SweepConfig(ports=PORTS, rate=0, concurrency=400)
    if os.cpu_count() and len(os.sched_getaffinity(0)) >= 2:
        assert tcp._plan_workers(len(addresses) * len(PORTS), len(addresses), config) >= 2
    calls: list[tuple[str, int]] = []
    threads: set[int] = set()
    fds = open_fds()

    def on_open(address: str, port: int) -> None:
        calls.append((address, port))
        threads.add(threading.get_ident())

    result = sweep(addresses, config, on_open=on_open)
    assert result.open_ports == farm.open
    assert len(calls) == len(set(calls)) == len(expected_pairs)
    assert threads == {threading.get_ident()}
    assert result.probes == len(addresses) * len(PORTS)
    assert not result.interrupted
    assert multiprocessing.active_children() == []
    assert fds_settle_to(fds) <= fds


def test_run_sweep_dispatches_to_the_builtin_engine(farm: Farm) -> None:
    farm.listen("127.50.3.1", 18443)
    result = run_sweep(None, ["127.50.3.1"], SweepConfig(ports=PORTS, engine="builtin"))
    assert isinstance(result, SweepResult)
    assert result.open_ports == {"127.50.3.1": [18443]}
    with pytest.raises(ConfigError):
        run_sweep("masscan", ["127.50.3.1"], SweepConfig(ports=PORTS))


def test_empty_address_list_is_an_empty_result() -> None:
    result = sweep([], SweepConfig(ports=PORTS))
    assert (result.open_ports, result.addresses, result.probes, result.interrupted) == ({}, 0, 0, False)


# --- limits ------------------------------------------------------------------------------------


def test_rate_cap_holds_in_process() -> None:
    # 50 addresses x 4 closed ports = 200 connects at 100/s: at least ~1.99 s by the token bucket.
    started = time.monotonic()
    result = sweep(addresses_in("127.50.5.0/26")[:50], SweepConfig(ports=PORTS, rate=100))
    elapsed = time.monotonic() - started
    assert result.probes == 200
    assert elapsed >= 1.9


def test_rate_cap_is_global_across_worker_processes() -> None:
    # Above one core's worth the sweep uses workers: the cap must still hold for the sum.
    addresses = addresses_in("127.50.64.0/18")[:15_000]
    config = SweepConfig(ports=PORTS, rate=30_000, concurrency=400)
    if len(os.sched_getaffinity(0)) >= 2:
        assert tcp._plan_workers(len(addresses) * len(PORTS), len(addresses), config) >= 2
    started = time.monotonic()
    result = sweep(addresses, config)
    elapsed = time.monotonic() - started
    assert result.probes == 60_000
    assert elapsed >= 1.9  # 60,000 connects at 30,000/s


def sample_max(addresses: set[str], done: threading.Event) -> list[int]:
    """Peak SYN-SENT count towards ``addresses`` while the sweep runs.

    Reading /proc/net/tcp is not atomic: a socket closed and another opened during one read
    can be counted twice. A hanging connect lasts the whole connect timeout, so only counts
    that two back-to-back reads agree on are kept; a real excess would persist and be seen.
    """
    peak = [0]

    def run() -> None:
        previous = -1
        while not done.is_set():
            count = syn_sent_to(addresses)
            if count == previous:
                peak[0] = max(peak[0], count)
            previous = count
            time.sleep(0.005)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return peak


def test_per_host_cap_holds_and_other_hosts_proceed() -> None:
    keep: list[socket.socket] = []
    targets = ["127.50.6.1", "127.50.6.2"]
    ports = tuple(range(18100, 18108))
    try:
        for address in targets:
            for port in ports:
                hanging_port(address, port, keep)
        done = threading.Event()
        peak_one = sample_max({"127.50.6.1"}, done)
        peak_all = sample_max(set(targets), done)
        result = sweep(targets, SweepConfig(ports=ports, per_host=2, concurrency=50, connect_timeout=0.3))
        done.set()
    finally:
        for s in keep:
            s.close()
    assert peak_one[0] == 2  # never more than per_host to one address, and the cap was reached
    assert peak_all[0] == 4  # the other address was swept at the same time
    assert result.open_ports == {}
    assert result.probes == 16
    assert any("16 connection attempt(s) got no answer within 0.3 s" in note for note in result.notes)


def test_global_concurrency_cap_holds() -> None:
    keep: list[socket.socket] = []
    targets = [f"127.50.7.{i}" for i in range(1, 11)]
    ports = (18200, 18201)
    try:
        for address in targets:
            for port in ports:
                hanging_port(address, port, keep)
        done = threading.Event()
        peak = sample_max(set(targets), done)
        started = time.monotonic()
        result = sweep(targets, SweepConfig(ports=ports, per_host=4, concurrency=3, connect_timeout=0.2))
        elapsed = time.monotonic() - started
        done.set()
    finally:
        for s in keep:
            s.close()
    assert peak[0] == 3
    assert result.probes == 20
    assert elapsed >= 20 / 3 * 0.2 * 0.9  # seven rounds of three hanging connects


# --- stopping and cleanup ---------------------------------------------------------------------


def stop_after(seconds: float) -> threading.Event:
    event = threading.Event()
    threading.Timer(seconds, event.set).start()
    return event


def test_stop_ends_an_in_process_sweep_promptly_with_partial_results(farm: Farm) -> None:
    addresses = addresses_in("127.50.8.0/22")[:2000]
    farm.listen(addresses[0], PORTS[0])  # probed first: found before the stop
    fds = open_fds()
    stop = stop_after(0.3)
    started = time.monotonic()
    result = sweep(addresses, SweepConfig(ports=PORTS, rate=2000), stop=stop)
    assert time.monotonic() - started < 1.3  # 8000 probes at 2000/s would take 4 s
    assert result.interrupted
    assert 0 < result.probes < 8000
    assert result.open_ports == {addresses[0]: [PORTS[0]]}
    assert any("stopped early" in note for note in result.notes)
    assert fds_settle_to(fds) <= fds


def test_stop_ends_a_multiprocess_sweep_promptly_and_leaves_nothing_behind(farm: Farm) -> None:
    addresses = addresses_in("127.50.128.0/18")[:12_000]
    farm.listen(addresses[0], PORTS[0])
    config = SweepConfig(ports=PORTS, rate=24_000, concurrency=400)  # 48,000 probes: 2 s
    if len(os.sched_getaffinity(0)) >= 2:
        assert tcp._plan_workers(48_000, len(addresses), config) >= 2
    fds = open_fds()
    stop = stop_after(0.4)
    started = time.monotonic()
    result = sweep(addresses, config, stop=stop)
    assert time.monotonic() - started < 1.4
    assert result.interrupted
    assert 0 < result.probes < 48_000
    assert result.open_ports == {addresses[0]: [PORTS[0]]}
    assert multiprocessing.active_children() == []
    assert fds_settle_to(fds) <= fds


def test_a_stop_set_before_the_start_probes_nothing() -> None:
    stop = threading.Event()
    stop.set()
    result = sweep(["127.50.9.1"], SweepConfig(ports=PORTS), stop=stop)
    assert result.interrupted and result.probes == 0


@pytest.mark.parametrize("network", ["127.50.10.0/28", "127.50.192.0/19"], ids=["in-process", "workers"])
def test_an_exception_in_on_open_propagates_and_cleans_up(farm: Farm, network: str) -> None:
    addresses = addresses_in(network)
    farm.listen(addresses[5], PORTS[1])
    fds = open_fds()

    def on_open(address: str, port: int) -> None:
        raise RuntimeError("the store is full")

    with pytest.raises(RuntimeError, match="the store is full"):
        sweep(addresses, SweepConfig(ports=PORTS, rate=0), on_open=on_open)
    assert multiprocessing.active_children() == []
    assert fds_settle_to(fds) <= fds


def test_orphaned_workers_exit_when_the_parent_is_killed(tmp_path: os.PathLike[str]) -> None:
    # A parent killed with SIGKILL runs no cleanup: its workers must still go (pipe EOF / PDEATHSIG).
    script = (
        "import ipaddress, os, sys\n"
        "from camaudit.config import SweepConfig\n"
        "from camaudit.discovery.tcp import sweep\n"
        "addresses = [str(a) for a in ipaddress.ip_network('127.50.224.0/19')]\n"
        "def on_open(a, p): pass\n"
        "def progress(done, total):\n"
        "    print(' '.join(str(c.pid) for c in __import__('multiprocessing').active_children()), flush=True)\n"
        "sweep(addresses, SweepConfig(ports=tuple(range(19000, 19040)), rate=30000), progress=progress)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = ""
        deadline = time.monotonic() + 10
        while not line.strip() and time.monotonic() < deadline:
            line = proc.stdout.readline()
        workers = [int(pid) for pid in line.split()]
        assert len(workers) >= 1
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and any(os.path.exists(f"/proc/{pid}") for pid in workers):
        time.sleep(0.05)
    alive = [pid for pid in workers if os.path.exists(f"/proc/{pid}") and not _is_zombie(pid)]
    assert alive == []


def test_sigterm_to_the_whole_process_group_interrupts_cleanly() -> None:
    # As a service manager stops a scan: SIGTERM to every process of the group, workers included.
    script = (
        "import ipaddress, json, multiprocessing, signal, threading\n"
        "from camaudit.config import SweepConfig\n"
        "from camaudit.discovery.tcp import sweep\n"
        "stop = threading.Event()\n"
        "signal.signal(signal.SIGTERM, lambda *a: stop.set())\n"
        "addresses = [str(a) for a in ipaddress.ip_network('127.50.224.0/19')]\n"
        "def progress(done, total): print('running', flush=True)\n"
        "r = sweep(addresses, SweepConfig(ports=tuple(range(19100, 19140)), rate=30000),\n"
        "          progress=progress, stop=stop)\n"
        "print(json.dumps({'interrupted': r.interrupted, 'probes': r.probes,\n"
        "                  'children': len(multiprocessing.active_children())}), flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "running"
        time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    last = [line for line in out.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    data = json.loads(last[-1])
    assert data["interrupted"] is True
    assert 0 < data["probes"] < 8192 * 40
    assert data["children"] == 0


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        SweepConfig(ports=()),
        SweepConfig(ports=(0,)),
        SweepConfig(ports=(70000,)),
        SweepConfig(concurrency=0),
        SweepConfig(concurrency=2.5),  # type: ignore[arg-type]
        SweepConfig(per_host=0),
        SweepConfig(rate=-1),
        SweepConfig(rate=float("nan")),
        SweepConfig(connect_timeout=0),
        SweepConfig(engine="zmap"),
    ],
    ids=lambda c: repr(c),
)
def test_bad_configs_raise_config_error(config: SweepConfig) -> None:
    with pytest.raises(ConfigError):
        sweep(["127.50.11.1"], config)


@pytest.mark.parametrize("bad", ["camera.local", "127.50.11.0/24", "", "127.50.11.300"])
def test_bad_addresses_raise_scope_error(bad: str) -> None:
    with pytest.raises(ScopeError, match="not an IP address"):
        sweep(["127.50.11.1", bad], SweepConfig(ports=PORTS))


def test_too_few_file_descriptors_is_a_clear_failure() -> None:
    # With every descriptor but a handful in use, the sweep must fail with a message, not crash.
    script = (
        "import resource, socket\n"
        "from camaudit.config import SweepConfig\n"
        "from camaudit.discovery import tcp\n"
        "from camaudit.errors import ScanFailed\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))\n"
        "hog = []\n"
        "try:\n"
        "    while True: hog.append(socket.socket())\n"
        "except OSError: pass\n"
        "try:\n"
        "    tcp.sweep(['127.50.12.1'], SweepConfig(ports=(18000,)))\n"
        "except ScanFailed as exc: print('FAILED', exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert "FAILED cannot open sockets for the sweep (too many open files)" in out.stdout, out.stderr
    assert ScanFailed.exit_code == 3


# --- unreachable hosts (needs a network namespace) --------------------------------------------


@pytest.mark.root
def test_unreachable_hosts_are_skipped_after_one_probe(tmp_path: os.PathLike[str]) -> None:
    # Inside the namespace: 10.250.0.0/24 has an 'unreachable' route (EHOSTUNREACH at once, no
    # packet leaves); 10.251.0.0/24 has no route at all (ENETUNREACH). And a veth pair wired to
    # nothing: 10.77.5.2 on its segment never answers ARP, so the kernel reports EHOSTUNREACH
    # about 3 s later, through epoll (lab.md section 7.2).
    with scratch_namespace(
        "t50",
        ["route", "add", "unreachable", "10.250.0.0/24"],
        ["link", "add", "cv0", "type", "veth", "peer", "name", "cv1"],
        ["addr", "add", "10.77.5.1/24", "dev", "cv0"],
        ["link", "set", "cv0", "up"],
        ["link", "set", "cv1", "up"],
    ) as ns:
        script = (
            "import json, socket\n"
            "from camaudit.config import SweepConfig\n"
            "from camaudit.discovery.tcp import sweep\n"
            "l = socket.socket(); l.bind(('127.0.0.1', 18000)); l.listen(8)\n"
            "r = sweep(['10.250.0.1', '10.250.0.2', '10.250.0.3', '10.251.0.1', '10.77.5.2', '127.0.0.1'],\n"
            "          SweepConfig(ports=(18000, 18080, 18554, 18443), per_host=1, connect_timeout=8))\n"
            "print(json.dumps({'open': r.open_ports, 'probes': r.probes, 'notes': r.notes}))\n"
        )
        out = python_in(ns, script)
        assert out.returncode == 0, out.stderr
        data = json.loads(out.stdout)
    assert data["open"] == {"127.0.0.1": [18000]}
    assert data["probes"] == 5 + 4  # one probe for each unreachable address, four for 127.0.0.1
    assert any(note.startswith("5 address(es) unreachable") for note in data["notes"])
