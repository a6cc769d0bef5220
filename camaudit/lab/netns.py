"""The namespace lab: a bridged camera segment built from Linux network namespaces (root only).

What loopback cannot give, this does: every emulated device has its own MAC (its profile's vendor
OUI) and address on one L2 segment, so ARP, and multicast WS-Discovery, SADP and DHIP, work for
real. The recipe is reference/lab.md section 2 "design B": one namespace holds the bridge, one
holds all devices as macvlans (one per device, each with its own MAC) behind a single veth, one
holds the scanner (``scan0``). With ``egress=True`` a router namespace (the segment's gateway) and
an "internet" namespace are added; :mod:`camaudit.lab.scenarios` sets their forwarding rules.

Topology (run id ``R``, 8 hex digits, so parallel runs never collide)::

    clab-R-scan  scan0 10.77.255.1 ─┐
    clab-R-cams  up0 ─ mv0000 10.77.0.1, mv0001 ...  ─┤ br0 in clab-R-lab
    clab-R-rtr   lan0 10.77.255.254 ─┘   wan0 10.88.0.1 + 203.0.113.1 ── up0 10.88.0.2 clab-R-inet
                                                                   lo 198.51.100.10, 203.0.113.53

Safety (lab.md sections 0 and 13): nothing is created in the host's namespace and nothing is
wired to a host interface: every ``ip`` command names its namespace with ``-n``, and veth peers
are born inside lab namespaces. Lab interfaces have names the host does not have (``scan0``,
``mvNNNN``), so a tool that resolves a name in the wrong namespace fails loudly. IPv6 is off in
every namespace before any link comes up (lab.md 2.2: otherwise DAD/MLD floods cost O(n^2)).
Senders call :func:`assert_in_lab_namespace` (a positive guard: lab.md 0.2).

A state file per run (``$CAMAUDIT_LAB_STATE_DIR`` or ``/run/camaudit-lab``) records the owner
process, the namespaces and every process started in them, so that :func:`cleanup_stale` can
remove what a crashed run left, by PID and by namespace name, never by process name.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CamauditError, DependencyError, UsageError
from .guard import (  # noqa: F401  (re-exported: the guard lives apart so that senders load it cheaply)
    GUARD_ENV,
    LAB_PREFIX,
    NETNS_DIR,
    LabNamespaceError,
    _ns_key,
    assert_in_lab_namespace,
    check_sender_allowed,
    current_lab_namespace,
    guard_required,
)

log = logging.getLogger(__name__)

#: Names this module makes: ``clab-<run id>-<role>``.
_NAME_RE = re.compile(r"^clab-([0-9a-f]{8})-([a-z][a-z0-9]{0,11})$")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")

STATE_DIR_ENV = "CAMAUDIT_LAB_STATE_DIR"
DEFAULT_STATE_DIR = Path("/run/camaudit-lab")

# Addresses (lab.md 0.4): never 192.0.2.0/24, which the build machines use.
CAMERA_SUBNET = ipaddress.IPv4Network("10.77.0.0/16")
SCANNER_ADDR = "10.77.255.1"
SCANNER_MAC = "02:00:00:00:ff:01"
ROUTER_LAN_ADDR = "10.77.255.254"
ROUTER_LAN_MAC = "02:00:00:00:ff:fe"
#: The router's upstream ("egress") segment towards the internet namespace.
ROUTER_WAN_ADDR = "10.88.0.1"
INET_WAN_ADDR = "10.88.0.2"
#: The router's "public" address: source of NAT and the IGD's external address.
ROUTER_PUBLIC_ADDR = "203.0.113.1"
INET_PUBLIC_ADDR = "203.0.113.2"
#: Canaries in the "internet" namespace (RFC 5737 documentation ranges, lab.md 0.4).
INTERNET_LISTENER_ADDR = "198.51.100.10"
INTERNET_RESOLVER_ADDR = "203.0.113.53"
# IPv6 (RFC 3849 documentation space; the host itself uses fd00::/64, so stay clear of it).
SEGMENT_PREFIX6 = "2001:db8:77::/64"
ROUTER_LAN_ADDR6 = "2001:db8:77::fe"
ROUTER_WAN_ADDR6 = "2001:db8:88::1"
INET_WAN_ADDR6 = "2001:db8:88::2"
INTERNET_LISTENER_ADDR6 = "2001:db8:5100::10"

#: Above this many devices pin neighbours (always done) and mind the shared ARP table (lab.md 2.4).
MAX_DEVICES = 1000

_IPV6_OFF = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
_CAMS_SYSCTLS = (
    # arp_ignore=1 / arp_announce=2: each macvlan answers ARP only for its own address with its
    # own MAC; without them a sweep sees every address under several MACs (lab.md 2.3).
    "net.ipv4.conf.all.arp_ignore=1",
    "net.ipv4.conf.all.arp_announce=2",
    "net.ipv4.conf.default.arp_ignore=1",
    "net.ipv4.conf.default.arp_announce=2",
    "net.ipv4.conf.all.rp_filter=0",
    "net.ipv4.conf.default.rp_filter=0",
    # One socket may join only 20 groups by default (lab.md 2.3); per namespace, so raise it here.
    "net.ipv4.igmp_max_memberships=4096",
)


class LabError(CamauditError):
    """The namespace lab could not be built, used or removed."""

    exit_code = 3


@dataclass(frozen=True)
class LabDevice:
    """One emulated device's place on the segment: its address and its (vendor OUI) MAC."""

    address: str
    mac: str


@dataclass
class Topology:
    """A built lab: its namespaces by role, its devices, and the processes started in it."""

    run_id: str
    namespaces: dict[str, str]
    devices: list[LabDevice]
    egress: bool
    state_file: Path
    owner_pid: int = field(default_factory=os.getpid)
    #: pid -> {"role", "argv", "start"}; ``start`` is /proc/PID/stat starttime (PID reuse check).
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        """This run's scratch directory (helper logs, ready files); removed by teardown."""
        return self.state_file.with_suffix(".d")

    # -- naming -------------------------------------------------------------------------------
    def ns(self, role: str) -> str:
        """The namespace name of ``role`` (``scan``, ``cams``, ``lab``, ``rtr``, ``inet``, ...)."""
        try:
            return self.namespaces[role]
        except KeyError:
            raise LabError(f"this lab has no {role!r} namespace") from None

    @staticmethod
    def device_iface(index: int) -> str:
        """The macvlan name of device ``index`` inside the camera namespace."""
        return f"mv{index:04d}"

    def iface_of(self, address: str) -> str:
        for i, dev in enumerate(self.devices):
            if dev.address == address:
                return self.device_iface(i)
        raise LabError(f"no lab device has address {address}")

    # -- running things inside -----------------------------------------------------------------
    def exec_argv(self, role: str, argv: Sequence[str]) -> list[str]:
        """``argv`` prefixed to run in ``role``'s namespace (``ip netns exec`` so that /sys and
        the routes a tool such as scapy reads at import are the namespace's: lab.md 3)."""
        return ["ip", "netns", "exec", self.ns(role), *argv]

    def run(
        self, role: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` to completion in ``role``'s namespace, bounded by ``timeout``."""
        return _run(self.exec_argv(role, argv), timeout=timeout, check=check, input=input)

    def popen(self, role: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start a background process in ``role``'s namespace and record its PID in the state
        file, so teardown (or a later ``lab down --all``) stops it by PID."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        kwargs.setdefault("start_new_session", True)  # a ^C to the owner is handled by teardown
        proc: subprocess.Popen[bytes] = subprocess.Popen(self.exec_argv(role, argv), **kwargs)
        # `ip netns exec` execs the command in place, so this PID is the command itself.
        self.processes[proc.pid] = {
            "role": role, "argv": list(argv), "start": proc_start_time(proc.pid),
        }
        self.save()
        return proc

    def stop_process(self, pid: int, grace: float = 2.0) -> None:
        """Stop one recorded process: SIGTERM, then SIGKILL after ``grace`` seconds."""
        info = self.processes.pop(pid, None)
        if info is not None:
            _terminate([(pid, info.get("start"))], grace)
            self.save()

    # -- state file ---------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "owner_pid": self.owner_pid,
            "owner_start": proc_start_time(self.owner_pid),
            "namespaces": self.namespaces,
            "devices": [{"address": d.address, "mac": d.mac} for d in self.devices],
            "egress": self.egress,
            "processes": {str(pid): info for pid, info in self.processes.items()},
            "extra": self.extra,
        }

    def save(self) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_state(), indent=1), encoding="utf-8")
        tmp.replace(self.state_file)

    @classmethod
    def load(cls, path: Path) -> Topology:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            topo = cls(
                run_id=str(data["run_id"]),
                namespaces={str(k): str(v) for k, v in data["namespaces"].items()},
                devices=[LabDevice(str(d["address"]), str(d["mac"])) for d in data["devices"]],
                egress=bool(data["egress"]),
                state_file=path,
                owner_pid=int(data["owner_pid"]),
                processes={int(k): dict(v) for k, v in data.get("processes", {}).items()},
                extra=dict(data.get("extra", {})),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LabError(f"cannot read lab state file {path}: {exc}") from None
        topo.extra["_owner_start"] = data.get("owner_start")
        return topo

    def owner_alive(self) -> bool:
        start = self.extra.get("_owner_start", proc_start_time(self.owner_pid))
        return pid_alive(self.owner_pid, start)

    # -- extra hosts ------------------------------------------------------------------------------
    def add_host(self, role: str, address: str, mac: str, *, gateway: bool = False) -> str:
        """Attach one more namespace to the segment (a peer such as ipycam) with ``host0`` at
        ``address``/16 and ``mac``; returns its namespace name."""
        if not _ROLE_RE.match(role) or role in self.namespaces:
            raise UsageError(f"bad or duplicate lab host role {role!r}")
        _check_segment_address(address)
        name = f"{LAB_PREFIX}{self.run_id}-{role}"
        self.namespaces[role] = name
        self.save()  # record before creating, so a crash in between is still cleaned up
        _ip_batch(None, [f"netns add {name}"])
        _sysctl(name, _IPV6_OFF)
        port = f"p-{role}"
        _ip_batch(self.ns("lab"), [
            f"link add {port} type veth peer name host0 netns {name}",
            f"link set {port} master br0 up",
        ])
        lines = [
            "link set lo up",
            f"link set host0 address {mac}",
            f"addr add {address}/{CAMERA_SUBNET.prefixlen} dev host0",
            "link set host0 up",
            "route add 224.0.0.0/4 dev host0",
        ]
        if gateway and self.egress:
            lines.append(f"route add default via {ROUTER_LAN_ADDR}")
        _ip_batch(name, lines)
        return name


# ---------------------------------------------------------------------------------------------
# The positive guard (lab.md 0.2)
# ---------------------------------------------------------------------------------------------










# ---------------------------------------------------------------------------------------------
# Building and removing
# ---------------------------------------------------------------------------------------------
def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, str(DEFAULT_STATE_DIR)))


def require_root() -> None:
    if os.geteuid() != 0:
        raise DependencyError("the namespace lab needs root (ip netns); run as root or use loopback mode")


def new_run_id() -> str:
    """8 hex digits: the owner's PID (6) and a random byte (2). The PID in the name lets
    :func:`cleanup_stale` recognise an orphaned namespace even when its state file is lost or
    was written to another state directory."""
    existing = list_lab_namespaces()
    for _ in range(256):
        rid = f"{os.getpid() & 0xFFFFFF:06x}{secrets.token_hex(1)}"
        if not any(n.startswith(f"{LAB_PREFIX}{rid}-") for n in existing):
            return rid
    raise LabError("no free lab run id for this process (256 labs already?)")


def build_topology(
    devices: Sequence[LabDevice], *, egress: bool = False, run_id: str | None = None,
) -> Topology:
    """Build the bridged camera segment (and with ``egress`` the router and internet
    namespaces). On any failure everything built so far is removed before the error is raised."""
    require_root()
    devices = list(devices)
    if len(devices) > MAX_DEVICES:
        raise UsageError(f"at most {MAX_DEVICES} devices per namespace lab (lab.md 2.4)")
    _check_devices(devices)
    rid = run_id or new_run_id()
    if not re.fullmatch(r"[0-9a-f]{8}", rid):
        raise UsageError(f"bad lab run id {rid!r}: 8 hex digits")
    roles = ["lab", "scan", "cams"] + (["rtr", "inet"] if egress else [])
    topo = Topology(
        run_id=rid,
        namespaces={r: f"{LAB_PREFIX}{rid}-{r}" for r in roles},
        devices=devices,
        egress=egress,
        state_file=state_dir() / f"{rid}.json",
    )
    topo.save()  # first, so that a crash during the build leaves a record for cleanup
    started = time.monotonic()
    try:
        _build(topo)
    except BaseException:
        teardown(topo)
        raise
    log.info("lab %s up: %d devices in %.2f s", rid, len(devices), time.monotonic() - started)
    return topo


def _build(topo: Topology) -> None:
    ns = topo.namespaces
    _ip_batch(None, [f"netns add {name}" for name in ns.values()])
    for role, name in ns.items():
        extra: tuple[str, ...] = ()
        if role == "cams":
            extra = _CAMS_SYSCTLS
        elif role == "rtr":
            extra = ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0",
                     "net.ipv4.conf.default.rp_filter=0")
        _sysctl(name, _IPV6_OFF + extra)

    # The bridge and one veth per attached namespace; peers are born inside the lab namespaces.
    lab = [
        "link set lo up",
        "link add br0 type bridge",
        # No querier on this segment: with snooping off the question of flooding is moot (lab.md 4)
        "link set br0 type bridge mcast_snooping 0",
        "link set br0 up",
        f"link add s-scan type veth peer name scan0 netns {ns['scan']}",
        "link set s-scan master br0 up",
        f"link add s-cams type veth peer name up0 netns {ns['cams']}",
        "link set s-cams master br0 up",
    ]
    if topo.egress:
        lab += [f"link add s-rtr type veth peer name lan0 netns {ns['rtr']}",
                "link set s-rtr master br0 up"]
    _ip_batch(ns["lab"], lab)

    plen = CAMERA_SUBNET.prefixlen
    scan = [
        "link set lo up",
        f"link set scan0 address {SCANNER_MAC}",
        f"addr add {SCANNER_ADDR}/{plen} dev scan0",
        "link set scan0 up",
        # Multicast needs a route or IP_MULTICAST_IF, else sendto() fails ENETUNREACH (lab.md 4).
        "route add 224.0.0.0/4 dev scan0",
    ]
    if topo.egress:
        scan.append(f"route add default via {ROUTER_LAN_ADDR}")
    _ip_batch(ns["scan"], scan)

    cams = ["link set lo up", "link set up0 up"]
    for i, dev in enumerate(topo.devices):
        mv = topo.device_iface(i)
        cams += [
            f"link add {mv} link up0 address {dev.mac} type macvlan mode bridge",
            f"addr add {dev.address}/{plen} dev {mv}",
            f"link set {mv} up",
            # Pin the scanner's (and router's) MAC: permanent entries are exempt from the
            # kernel's ARP table limit, which all namespaces share (lab.md 2.4).
            f"neigh replace {SCANNER_ADDR} lladdr {SCANNER_MAC} dev {mv} nud permanent",
        ]
        if topo.egress:
            cams.append(f"neigh replace {ROUTER_LAN_ADDR} lladdr {ROUTER_LAN_MAC} dev {mv} nud permanent")
    if topo.egress and topo.devices:
        cams.append(f"route add default via {ROUTER_LAN_ADDR} dev {topo.device_iface(0)}")
    _ip_batch(ns["cams"], cams)

    if topo.egress:
        _ip_batch(ns["rtr"], [
            "link set lo up",
            f"link set lan0 address {ROUTER_LAN_MAC}",
            f"addr add {ROUTER_LAN_ADDR}/{plen} dev lan0",
            "link set lan0 up",
            f"link add wan0 type veth peer name up0 netns {ns['inet']}",
            f"addr add {ROUTER_WAN_ADDR}/24 dev wan0",
            f"addr add {ROUTER_PUBLIC_ADDR}/24 dev wan0",
            "link set wan0 up",
            f"route add 198.51.100.0/24 via {INET_WAN_ADDR}",
        ])
        _ip_batch(ns["inet"], [
            "link set lo up",
            f"addr add {INET_WAN_ADDR}/24 dev up0",
            f"addr add {INET_PUBLIC_ADDR}/24 dev up0",
            "link set up0 up",
            # Canaries on lo (no dummy module on CI kernels); the router routes to them.
            f"addr add {INTERNET_LISTENER_ADDR}/32 dev lo",
            f"addr add {INTERNET_RESOLVER_ADDR}/32 dev lo",
            # The "internet" routes the camera segment back through the router (no NAT needed
            # unless a scenario adds it).
            f"route add {CAMERA_SUBNET} via {ROUTER_WAN_ADDR}",
        ])


FARM_READY_TIMEOUT = 30.0


def devices_from_specs(specs: Sequence[Mapping[str, Any]]) -> list[LabDevice]:
    """The segment places (address, MAC) of farm device specs (``DeviceSpec.to_json()``)."""
    return [LabDevice(str(s["address"]), str(s["mac"]).lower()) for s in specs]


def start_farm(topo: Topology, specs: Sequence[Mapping[str, Any]],
               *, timeout: float = FARM_READY_TIMEOUT) -> int:
    """Serve ``specs`` from one ``python -m camaudit.lab.farm`` process in the camera namespace,
    every socket of device i bound to its macvlan ``mv<i>`` (SO_BINDTODEVICE: replies then
    leave with the device's own MAC, lab.md 2.3) and its multicast joined on that interface.
    Returns the farm's PID once its ready file exists."""
    if [(d.address, d.mac) for d in devices_from_specs(specs)] != \
            [(d.address, d.mac.lower()) for d in topo.devices]:
        raise LabError("farm device specs do not match the lab's devices (address, MAC, order)")
    prepared = [{**spec, "bind_device": topo.device_iface(i), "multicast_iface": topo.device_iface(i)}
                for i, spec in enumerate(specs)]
    topo.run_dir.mkdir(parents=True, exist_ok=True)
    spec_file = topo.run_dir / "farm-spec.json"
    spec_file.write_text(json.dumps(prepared), encoding="utf-8")
    ready = topo.run_dir / "farm.ready"
    with contextlib.suppress(FileNotFoundError):
        ready.unlink()
    logpath = topo.run_dir / "farm.log"
    with logpath.open("ab") as logf:
        proc = topo.popen("cams", [sys.executable, "-m", "camaudit.lab.farm", "--spec",
                                   str(spec_file), "--ready-file", str(ready)],
                          stdout=logf, stderr=logf)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            topo.stop_process(proc.pid)
            tail = logpath.read_text(errors="replace").strip()[-400:]
            raise LabError(f"the lab farm did not come up in the camera namespace: {tail or 'no output'}")
        time.sleep(0.05)
    topo.extra["farm_pid"] = proc.pid
    topo.save()
    return proc.pid


def teardown(topo: Topology, grace: float = 2.0) -> list[str]:
    """Stop every process of the run (recorded ones, then any still inside its namespaces, by
    PID), delete its namespaces (which removes every veth, macvlan and bridge in them), and
    remove the state file. Returns the names of namespaces that could NOT be removed."""
    _terminate([(pid, info.get("start")) for pid, info in topo.processes.items()], grace)
    topo.processes.clear()
    names = [n for n in topo.namespaces.values() if (NETNS_DIR / n).exists()]
    leftover = _pids_in_namespaces(names)
    if leftover:
        log.info("lab %s: stopping %d unrecorded processes", topo.run_id, len(leftover))
        _terminate([(pid, None) for pid in leftover], grace)
    if names:
        _run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in names),
             check=False, timeout=30)
    remaining = [n for n in names if (NETNS_DIR / n).exists()]
    if remaining:
        log.warning("lab %s: namespaces left behind: %s", topo.run_id, remaining)
    else:
        shutil.rmtree(topo.run_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            topo.state_file.unlink()
    return remaining


def catch_stop_signals() -> dict[str, int]:
    """From now on SIGINT and SIGTERM only set ``["signal"]`` in the returned dict: install it
    before building, so that a signal at any moment still ends in a full teardown."""
    stop = {"signal": 0}

    def handler(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    return stop


def serve_until_signalled(topo: Topology, lifetime: float | None = None,
                          stop: dict[str, int] | None = None) -> None:
    """Block until SIGINT or SIGTERM (or ``lifetime`` seconds, or the farm dying), then tear
    the lab down. For ``camaudit lab up --netns``, which owns the lab while it runs. ``stop``
    is :func:`catch_stop_signals`' dict when the caller installed the handlers earlier."""
    old = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    if stop is None:
        stop = catch_stop_signals()
    deadline = None if lifetime is None else time.monotonic() + lifetime
    farm = topo.extra.get("farm_pid")
    try:
        while not stop["signal"] and (deadline is None or time.monotonic() < deadline):
            if farm is not None and not pid_alive(int(farm), topo.processes.get(int(farm), {}).get("start")):
                log.warning("lab %s: the farm (pid %s) exited; taking the lab down", topo.run_id, farm)
                break
            time.sleep(0.2)
    finally:
        teardown(topo)  # first: a signal restored to its default must not cut the teardown short
        for sig, prev in old.items():
            if prev is not None:
                signal.signal(sig, prev)


def exec_in_lab(argv: Sequence[str], *, run_id: str | None = None, role: str = "scan") -> int:
    """Run ``argv`` in ``role``'s namespace of the running lab (default: the scanner), with
    :data:`GUARD_ENV` set so camaudit's senders insist on being inside the lab. Returns its
    exit code."""
    require_root()
    if not argv:
        raise UsageError("nothing to run: give a command after --, e.g. camaudit lab exec -- camaudit discover")
    topo = find_lab(run_id)
    env = {**os.environ, GUARD_ENV: "1"}
    try:
        return subprocess.run(topo.exec_argv(role, argv), env=env, check=False).returncode
    except KeyboardInterrupt:
        return 130


def stop_lab(run_id: str | None = None, timeout: float = 15.0) -> str:
    """Ask a running lab's owner to stop (SIGTERM: it tears its lab down) and wait for it; tear
    down directly if the owner does not finish in time. Returns the run id."""
    require_root()
    topo = find_lab(run_id)
    with contextlib.suppress(ProcessLookupError):
        os.kill(topo.owner_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while topo.state_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if topo.state_file.exists():
        left = teardown(topo)
        if left:
            raise LabError(f"could not remove namespaces {', '.join(left)}")
    return topo.run_id


def list_lab_namespaces() -> list[str]:
    try:
        return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(LAB_PREFIX))
    except OSError:
        return []


def running_labs() -> list[Topology]:
    """Labs whose owner process is alive, from the state directory."""
    labs = []
    for path in sorted(state_dir().glob("*.json")):
        with contextlib.suppress(LabError):
            topo = Topology.load(path)
            if topo.owner_alive():
                labs.append(topo)
    return labs


def find_lab(run_id: str | None = None) -> Topology:
    """The running lab with ``run_id``, or the only running one."""
    labs = running_labs()
    if run_id is not None:
        for topo in labs:
            if topo.run_id == run_id:
                return topo
        raise UsageError(f"no running lab with run id {run_id}")
    if not labs:
        raise UsageError("no namespace lab is running; start one with `camaudit lab up --netns`")
    if len(labs) > 1:
        ids = ", ".join(t.run_id for t in labs)
        raise UsageError(f"several labs are running ({ids}); choose one with --run-id")
    return labs[0]


def cleanup_stale(*, everything: bool = False) -> list[str]:
    """Remove what crashed runs left: runs whose owner process is gone (or, with
    ``everything``, every run this module made, live or not). Namespaces named like ours but
    with no state file are removed too; other ``clab-*`` namespaces (another tool's) are left
    alone. Returns the removed namespace names."""
    removed: list[str] = []
    claimed: set[str] = set()
    for path in sorted(state_dir().glob("*.json")):
        try:
            topo = Topology.load(path)
        except LabError as exc:
            log.warning("%s", exc)
            continue
        if topo.owner_alive() and not everything:
            claimed.add(topo.run_id)
            continue
        names = [n for n in topo.namespaces.values() if (NETNS_DIR / n).exists()]
        left = teardown(topo)
        removed += [n for n in names if n not in left]
        claimed.add(topo.run_id)  # handled
    # Ours by name, not claimed by a live run, and the PID in the run id is gone (or, with
    # ``everything``, regardless). Another tool's clab-* namespaces never match _NAME_RE.
    orphans = [n for n in list_lab_namespaces()
               if (m := _NAME_RE.match(n)) and m.group(1) not in claimed
               and (everything or not pid_alive(int(m.group(1)[:6], 16), None))]
    if orphans:
        _terminate([(pid, None) for pid in _pids_in_namespaces(orphans)], 2.0)
        _run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {n}\n" for n in orphans),
             check=False, timeout=30)
        removed += [n for n in orphans if not (NETNS_DIR / n).exists()]
    return removed


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _check_segment_address(address: str) -> None:
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        raise UsageError(f"bad lab address {address!r}") from None
    if ip not in CAMERA_SUBNET or ip in (CAMERA_SUBNET.network_address,
                                         CAMERA_SUBNET.broadcast_address):
        raise UsageError(f"lab address {address} is outside {CAMERA_SUBNET}")
    if str(ip) in (SCANNER_ADDR, ROUTER_LAN_ADDR):
        raise UsageError(f"lab address {address} is reserved for the scanner or router")


_MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _check_devices(devices: Iterable[LabDevice]) -> None:
    seen_ip: set[str] = set()
    seen_mac: set[str] = set()
    for dev in devices:
        _check_segment_address(dev.address)
        mac = dev.mac.lower()
        if not _MAC_RE.match(mac) or int(mac[:2], 16) & 1:
            raise UsageError(f"bad unicast MAC {dev.mac!r} for lab device {dev.address}")
        if dev.address in seen_ip or mac in seen_mac:
            raise UsageError(f"duplicate lab address or MAC: {dev.address} {dev.mac}")
        seen_ip.add(dev.address)
        seen_mac.add(mac)


def _run(
    argv: Sequence[str], *, timeout: float = 30.0, check: bool = True, input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        res = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                             input=input, check=False)
    except FileNotFoundError:
        raise DependencyError(f"{argv[0]} is not installed (iproute2 / nftables)") from None
    except subprocess.TimeoutExpired:
        raise LabError(f"{' '.join(argv[:6])} did not finish in {timeout:g} s") from None
    if check and res.returncode != 0:
        msg = " / ".join((res.stderr or res.stdout).split("\n")).strip(" /")[:300]
        raise LabError(f"{' '.join(argv[:6])} failed: {msg or res.returncode}")
    return res


def _ip_batch(netns: str | None, lines: Sequence[str]) -> None:
    """Run ``ip -batch`` (one exec for many lines; lab.md 2.3) in ``netns`` (None: only for
    ``netns add``/``del`` lines, which change no interface of the host)."""
    if netns is None:
        assert all(line.startswith("netns ") for line in lines), lines
        argv = ["ip", "-batch", "-"]
    else:
        argv = ["ip", "-n", netns, "-batch", "-"]
    _run(argv, input="".join(f"{line}\n" for line in lines), timeout=60)


def _sysctl(netns: str, settings: Sequence[str]) -> None:
    _run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *settings])


def sysctl(topo: Topology, role: str, settings: Sequence[str]) -> None:
    """Set sysctls inside ``role``'s namespace."""
    _sysctl(topo.ns(role), settings)


def ip_batch(topo: Topology, role: str, lines: Sequence[str]) -> None:
    """Run ``ip -batch`` lines inside ``role``'s namespace."""
    _ip_batch(topo.ns(role), lines)


def proc_start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # Field 22 (starttime), counted after the ")" that ends the command name.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def pid_alive(pid: int, start: int | None) -> bool:
    now = proc_start_time(pid)
    if now is None:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    if state == "Z":
        return False
    return start is None or now == start


def _terminate(pids: Sequence[tuple[int, int | None]], grace: float) -> None:
    """SIGTERM each live PID (checking its start time, so a reused PID is never hit), wait up to
    ``grace`` seconds, then SIGKILL the rest; reap our own children."""
    live = [(p, s) for p, s in pids if p != os.getpid() and pid_alive(p, s)]
    for pid, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while live and time.monotonic() < deadline:
        _reap(live)
        live = [(p, s) for p, s in live if pid_alive(p, s)]
        if live:
            time.sleep(0.05)
    for pid, _ in live:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    t_end = time.monotonic() + 2.0
    while live and time.monotonic() < t_end:
        _reap(live)
        live = [(p, s) for p, s in live if pid_alive(p, s)]
        if live:
            time.sleep(0.05)


def _reap(pids: Sequence[tuple[int, int | None]]) -> None:
    for pid, _ in pids:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)


def _pids_in_namespaces(names: Sequence[str]) -> list[int]:
    pids: list[int] = []
    for name in names:
        res = _run(["ip", "netns", "pids", name], check=False, timeout=10)
        pids += [int(tok) for tok in res.stdout.split() if tok.isdigit()]
    return sorted(set(pids) - {os.getpid()})
