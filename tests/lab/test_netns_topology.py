"""The namespace lab's topology: guard, ARP with per-device MACs, clean teardown, crash cleanup.

Every packet here stays inside namespaces this module creates (``clab-<run id>-*``), wired only
to each other; the host's namespace sends nothing (lab.md section 0).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from camaudit.lab import netns
from camaudit.lab.netns import LabDevice, LabNamespaceError, Topology

pytestmark = pytest.mark.root

# Vendor OUIs from reference/lab.md section 2: Hikvision, Dahua, Axis, Hanwha.
DEVICES = [
    LabDevice("10.77.0.1", "44:19:b6:00:00:01"),
    LabDevice("10.77.0.2", "3c:ef:8c:00:00:02"),
    LabDevice("10.77.0.3", "ac:cc:8e:00:00:03"),
    LabDevice("10.77.0.4", "00:09:18:00:00:04"),
    LabDevice("10.77.1.9", "44:19:b6:00:01:09"),
]

ARP_SCRIPT = textwrap.dedent("""
    import json, sys
    from camaudit.lab.netns import assert_in_lab_namespace
    assert_in_lab_namespace()
    from scapy.all import ARP, Ether, srp
    targets = sys.argv[1].split(",")
    ans, _ = srp(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=targets), iface="scan0",
                 timeout=1, verbose=0)
    print(json.dumps([[r[ARP].psrc, r[ARP].hwsrc] for _, r in ans]))
""")

# A stand-in device service: each device's TCP 80 bound to its own macvlan (SO_BINDTODEVICE,
# lab.md 2.3), answering with its address, so replies leave with the device's own MAC.
STANDIN_SCRIPT = textwrap.dedent("""
    import socket, sys, selectors, time
    sel = selectors.DefaultSelector()
    for i, addr in enumerate(sys.argv[1].split(",")):
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"mv%04d" % i)
        s.bind((addr, 80)); s.listen(16); sel.register(s, selectors.EVENT_READ, addr)
    print("ready", flush=True)
    end = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < end:
        for key, _ in sel.select(0.5):
            c, _ = key.fileobj.accept(); c.sendall(b"DEVICE " + key.data.encode() + b"\\n"); c.close()
""")


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {line.split(":", 2)[1].strip() for line in out.stdout.splitlines()}


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    d = tmp_path_factory.mktemp("labstate")
    old = os.environ.get(netns.STATE_DIR_ENV)
    os.environ[netns.STATE_DIR_ENV] = str(d)
    yield d
    if old is None:
        os.environ.pop(netns.STATE_DIR_ENV, None)
    else:
        os.environ[netns.STATE_DIR_ENV] = old


@pytest.fixture(scope="module")
def lab(state_dir: Path) -> Iterator[Topology]:
    before = _host_links()
    topo = netns.build_topology(DEVICES)
    proc = topo.popen("cams", [sys.executable, "-c", STANDIN_SCRIPT,
                               ",".join(d.address for d in DEVICES), "60"],
                      stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    try:
        yield topo
    finally:
        assert netns.teardown(topo) == []
        assert _host_links() == before


def test_guard_refuses_in_host_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    assert netns.current_lab_namespace() is None
    with pytest.raises(LabNamespaceError, match="not inside a lab network namespace"):
        netns.assert_in_lab_namespace()
    monkeypatch.setenv(netns.GUARD_ENV, "1")
    with pytest.raises(LabNamespaceError):
        netns.check_sender_allowed()
    monkeypatch.delenv(netns.GUARD_ENV)
    netns.check_sender_allowed()  # real audits: the guard is off unless asked for


def test_guard_accepts_inside_each_lab_namespace(lab: Topology) -> None:
    code = "from camaudit.lab.netns import assert_in_lab_namespace as a; print(a())"
    for role in ("scan", "cams", "lab"):
        out = lab.run(role, [sys.executable, "-c", code]).stdout.strip()
        assert out == lab.ns(role)


def test_names_are_per_run_and_lab_interfaces_stay_out_of_host(lab: Topology) -> None:
    assert all(n.startswith(f"clab-{lab.run_id}-") for n in lab.namespaces.values())
    assert lab.run_id[:6] == f"{os.getpid() & 0xFFFFFF:06x}"
    host = _host_links()
    assert not host & {"scan0", "up0", "br0", "s-scan", "s-cams", "mv0000"}
    links = lab.run("cams", ["ip", "-o", "link", "show"]).stdout
    assert "mv0004@up0" in links and "eth0" not in links


def test_every_device_answers_arp_with_its_own_mac(lab: Topology) -> None:
    targets = [d.address for d in DEVICES] + ["10.77.0.200"]  # one absent address
    res = lab.run("scan", [sys.executable, "-c", ARP_SCRIPT, ",".join(targets)], timeout=30)
    replies = json.loads(res.stdout.strip().splitlines()[-1])
    # Exactly one reply per device (arp_ignore=1: no ARP flux), each with the device's own MAC.
    assert sorted(map(tuple, replies)) == sorted((d.address, d.mac) for d in DEVICES)


def test_tcp_replies_leave_with_the_device_mac(lab: Topology) -> None:
    code = textwrap.dedent("""
        import socket, sys
        for addr in sys.argv[1:]:
            s = socket.create_connection((addr, 80), timeout=2); print(s.recv(64).decode().strip()); s.close()
    """)
    out = lab.run("scan", [sys.executable, "-c", code, *(d.address for d in DEVICES)]).stdout
    assert out.split("\n")[:-1] == [f"DEVICE {d.address}" for d in DEVICES]
    neigh = lab.run("scan", ["ip", "neigh", "show", "dev", "scan0"]).stdout
    for dev in DEVICES:
        assert f"{dev.address} lladdr {dev.mac}" in neigh
    # The scanner's MAC is pinned on the camera side (exempt from the shared ARP limit, lab.md 2.4).
    pinned = lab.run("cams", ["ip", "neigh", "show", "nud", "permanent"]).stdout
    assert pinned.count(f"{netns.SCANNER_ADDR} ") == len(DEVICES)


def test_state_file_lists_namespaces_and_processes(lab: Topology) -> None:
    data = json.loads(lab.state_file.read_text())
    assert data["namespaces"] == lab.namespaces and data["owner_pid"] == os.getpid()
    assert len(data["processes"]) == 1
    found = netns.find_lab(lab.run_id)
    assert found.namespaces == lab.namespaces


def test_bad_devices_are_refused_before_anything_is_built(state_dir: Path) -> None:
    before = netns.list_lab_namespaces()
    for bad in ([LabDevice("192.0.2.7", "44:19:b6:00:00:01")],
                [LabDevice("10.77.0.1", "45:19:b6:00:00:01")],  # multicast bit set
                [LabDevice("10.77.0.1", "44:19:b6:00:00:01")] * 2):
        with pytest.raises(netns.UsageError):
            netns.build_topology(bad)
    assert netns.list_lab_namespaces() == before


def test_up_down_leaves_nothing_behind(state_dir: Path) -> None:
    before_links = _host_links()
    topo = netns.build_topology(DEVICES[:2], egress=True)
    names = list(topo.namespaces.values())
    sleeper = topo.popen("inet", ["sleep", "30"])
    assert set(names) <= set(netns.list_lab_namespaces())
    assert topo.state_file.exists()
    assert netns.teardown(topo) == []
    assert not set(names) & set(netns.list_lab_namespaces())
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert topo.run_id not in listed
    assert sleeper.poll() is not None  # stopped and reaped
    assert not topo.state_file.exists() and not topo.run_dir.exists()
    assert _host_links() == before_links


CRASHER = textwrap.dedent("""
    import subprocess, sys, time
    from camaudit.lab import netns
    topo = netns.build_topology([netns.LabDevice("10.77.0.1", "44:19:b6:00:00:01")], egress=True)
    p = topo.popen("cams", ["sleep", "60"])
    print(topo.run_id, p.pid, flush=True)
    time.sleep(60)
""")


def test_cleanup_removes_what_a_crashed_run_left(state_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", CRASHER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        run_id, child = proc.stdout.readline().split()
        names = [n for n in netns.list_lab_namespaces() if n.startswith(f"clab-{run_id}-")]
        assert len(names) == 5
        # A live run is never touched.
        assert not set(netns.cleanup_stale()) & set(names)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert netns.pid_alive(int(child), None)  # the crash left its process behind
    removed = netns.cleanup_stale()
    assert sorted(removed) == sorted(names)
    deadline = time.monotonic() + 3
    while netns.pid_alive(int(child), None) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not netns.pid_alive(int(child), None)
    assert not list(state_dir.glob(f"{run_id}*"))


def test_cleanup_finds_orphans_without_a_state_file(state_dir: Path) -> None:
    # A run whose state file is gone: its namespace names still carry the dead owner's PID.
    dead = subprocess.Popen(["true"])
    dead.wait()
    name = f"clab-{dead.pid & 0xFFFFFF:06x}ee-scan"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert name in netns.cleanup_stale()
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    assert name not in netns.list_lab_namespaces()


OWNER = textwrap.dedent("""
    from camaudit.lab import netns
    topo = netns.build_topology([netns.LabDevice("10.77.0.1", "44:19:b6:00:00:01")])
    topo.popen("cams", ["sleep", "60"])
    print(topo.run_id, flush=True)
    netns.serve_until_signalled(topo, lifetime=60)
    print("down", flush=True)
""")


def test_exec_runs_in_the_scanner_namespace_and_stop_takes_the_lab_down(
        state_dir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    owner = subprocess.Popen([sys.executable, "-c", OWNER], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        run_id = owner.stdout.readline().strip()
        names = [n for n in netns.list_lab_namespaces() if n.startswith(f"clab-{run_id}-")]
        assert len(names) == 3
        code = ("import os; from camaudit.lab.netns import assert_in_lab_namespace as a; "
                "print(a(), os.environ.get('CAMAUDIT_REQUIRE_LAB_NETNS'))")
        assert netns.exec_in_lab([sys.executable, "-c", code], run_id=run_id) == 0
        assert capfd.readouterr().out.split() == [f"clab-{run_id}-scan", "1"]
        assert netns.exec_in_lab(["false"], run_id=run_id) == 1  # exit codes pass through
        assert netns.stop_lab(run_id) == run_id
        assert owner.wait(timeout=10) == 0 and owner.stdout.read().strip() == "down"
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert not set(names) & set(netns.list_lab_namespaces())
    with pytest.raises(netns.UsageError, match="no running lab"):
        netns.find_lab(run_id)
