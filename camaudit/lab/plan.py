"""Plan a lab: which device sits at which address, with which MAC, serial and settings.

Deterministic for a seed, so a test, the demo and a benchmark can name the same network.
MACs come from the profile's OUIs (reference/oui.json groups, checked by the profile tests);
serials follow the vendor layouts in reference/fingerprinting.md section 5.
"""

from __future__ import annotations

import ipaddress
import random
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigError, UsageError
from .profiles import Profile, load_profiles

#: Default mix of a lab: weights per profile group (profile ``groups``) or profile id.
DEFAULT_MIX: dict[str, int] = {
    "hikvision": 35, "dahua": 30, "axis": 6, "hanwha": 5, "bosch": 5, "uniview": 5,
    "xiongmai": 4, "host": 10,
}  # fmt: skip

#: Misbehaviours a device can be given for robustness tests (camaudit/lab/servers.py).
BEHAVIOURS = ("slow", "truncated", "oversized", "malformed", "xml_bomb", "reset")

#: Addresses the lab never hands out: the gateway it writes into device settings is the last
#: usable one, and .0/.255 octets are skipped so that no device looks like a broadcast address.
_SKIP_OCTETS = (0, 255)


@dataclass
class DeviceSpec:
    """One emulated device. JSON-serialisable (``to_json``/``from_json``) for spec files."""

    address: str
    profile: str
    mac: str
    serial: str
    uuid: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    #: one of BEHAVIOURS, or None for a well-behaved device
    behaviour: str | None = None
    #: SO_BINDTODEVICE for every socket of this device (namespace mode with macvlans)
    bind_device: str | None = None
    #: join WS-Discovery/SADP/DHIP multicast on this interface (by ifindex); never in loopback mode
    multicast_iface: str | None = None
    netmask: str = "255.255.0.0"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DeviceSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"device spec has unknown keys: {', '.join(sorted(unknown))}")
        try:
            spec = cls(**dict(data))
        except TypeError as exc:
            raise ConfigError(f"device spec is incomplete: {exc}") from None
        if spec.behaviour is not None and spec.behaviour not in BEHAVIOURS:
            raise ConfigError(f"unknown behaviour {spec.behaviour!r}; known: {', '.join(BEHAVIOURS)}")
        return spec


def parse_mix(text: str | None) -> dict[str, int]:
    """``hikvision=30,dahua=30,axis=5`` -> weights; UsageError on anything else."""
    if not text:
        return dict(DEFAULT_MIX)
    mix: dict[str, int] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        try:
            weight = int(value)
        except ValueError:
            weight = -1
        if not sep or not key or weight < 0:
            raise UsageError(f"bad mix entry {part!r}: use name=weight, e.g. hikvision=30,dahua=30")
        mix[key.strip()] = weight
    if not mix or sum(mix.values()) == 0:
        raise UsageError("the mix gives no device a weight")
    return mix


def _profiles_for(key: str, profiles: Mapping[str, Profile]) -> list[Profile]:
    """A mix key names a profile id, a profile group, a vendor or a brand."""
    if key in profiles:
        return [profiles[key]]
    found = [
        p for p in profiles.values() if key in p.groups or key == p.vendor or key == (p.brand or "")
    ]
    return sorted(found, key=lambda p: p.id)


def _apportion(count: int, weights: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Largest-remainder split of ``count`` devices over the weights."""
    total = sum(w for _, w in weights)
    exact = [(key, count * w / total) for key, w in weights]
    counts = {key: int(x) for key, x in exact}
    leftover = count - sum(counts.values())
    for key, _ in sorted(exact, key=lambda kx: (-(kx[1] - int(kx[1])), kx[0]))[:leftover]:
        counts[key] += 1
    return counts


def lab_addresses(subnet: str, count: int) -> tuple[list[str], str, str]:
    """The first ``count`` device addresses of ``subnet``, its gateway and its netmask."""
    try:
        network = ipaddress.IPv4Network(subnet, strict=False)
    except ValueError as exc:
        raise UsageError(f"{subnet!r} is not an IPv4 subnet (example: 127.77.0.0/16)") from exc
    if network.num_addresses < 4:
        raise UsageError(f"subnet {subnet} is too small for a lab")
    gateway = network.broadcast_address - 1
    addresses: list[str] = []
    for host in network.hosts():
        if len(addresses) == count:
            break
        if host == gateway or host.packed[-1] in _SKIP_OCTETS:
            continue
        addresses.append(str(host))
    if len(addresses) < count:
        raise UsageError(f"subnet {subnet} holds only {len(addresses)} lab devices, not {count}")
    return addresses, str(gateway), str(network.netmask)


def make_mac(profile: Profile, rng: random.Random) -> str:
    """A MAC from one of the profile's OUIs, or a locally administered one when it has none."""
    if profile.ouis:
        prefix = [int(b, 16) for b in rng.choice(profile.ouis).split(":")]
    else:
        # 0x02 = locally administered unicast: claims no maker (IEEE 802 section 8.2).
        prefix = [0x02, 0x00, rng.randrange(256)]
    tail = [rng.randrange(256) for _ in range(3)]
    return ":".join(f"{b:02x}" for b in prefix + tail)


def make_serial(profile: Profile, rng: random.Random) -> str:
    """A serial in the vendor's observed layout (fingerprinting.md section 5)."""
    digits, upper = string.digits, string.ascii_uppercase + string.digits
    if profile.serial_format == "hikvision":
        # <model>[01]<YYYYMMDD><region><9 digits>: DS-2CD2385G1-I20200414AAWRE33842150,
        # CS-C6TC-32WFR0120170327CCCH738231995 (EZVIZ carries the "01").
        date = f"20{rng.randrange(15, 25):02d}{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
        region = rng.choice(("AAWR", "BBWR", "CCRR", "CCWR", "CCCH"))
        infix = "01" if profile.model.startswith("CS-") else ""
        return f"{profile.model}{infix}{date}{region}{''.join(rng.choices(digits, k=9))}"
    if profile.serial_format == "dahua":
        # 15 upper-case alphanumerics with "PA" at positions 8-9 in every Dahua sample.
        return "".join(rng.choices(upper, k=7)) + "PA" + "".join(rng.choices(upper, k=6))
    if profile.serial_format == "dahua_oem":
        return "".join(rng.choices(upper, k=15))  # Amcrest 4X7C5A1ZAG21L3F
    if profile.serial_format == "lorex":
        return "ND" + "".join(rng.choices(digits, k=12))  # recog Lorex NR900 ND011811000000
    return "".join(rng.choices(upper, k=12))


def _vary_settings(profile: Profile, rng: random.Random, gateway: str, index: int) -> dict[str, Any]:
    """The profile's network and cloud settings, with the cloud state and UPnP varied per device
    so that egress work sees registered, merely enabled and disabled devices in one lab."""
    settings = profile.default_settings()
    settings["gateway"] = gateway if settings.get("gateway", "auto") == "auto" else settings["gateway"]
    settings["dns"] = [gateway if d == "auto" else d for d in settings.get("dns", [])]
    ntp = settings.setdefault("ntp", {"enabled": False, "servers": []})
    ntp["servers"] = [gateway if s == "auto" else s for s in ntp.get("servers", [])]
    cloud = settings.setdefault("cloud", {"kind": "none"})
    if cloud.get("kind", "none") != "none":
        cloud["state"] = rng.choices(("off", "enabled", "registered"), weights=(2, 1, 1))[0]
    upnp = settings.setdefault("upnp", {"enabled": False, "mappings": []})
    if profile.device_type != "other" and rng.random() < 0.1:
        # An active mapping on the router: the inbound exposure of egress.md section 2.2/2.3.
        # The WAN address is from 198.51.100.0/24, the lab's "internet" (lab.md section 0.4).
        upnp["enabled"] = True
        port = next((p for p, s in profile.tcp if s == "http"), 80)
        upnp["mappings"] = [{
            "protocol": "TCP", "internal_port": port, "external_port": 10000 + index % 50000,
            "external_address": f"198.51.100.{1 + index % 250}", "status": "active",
        }]  # fmt: skip
    return settings


def plan_devices(
    count: int,
    subnet: str = "127.77.0.0/16",
    mix: Mapping[str, int] | str | None = None,
    seed: int = 0,
    *,
    misbehaving: Mapping[str, int] | None = None,
) -> list[DeviceSpec]:
    """``count`` devices on ``subnet``, mixed by ``mix`` weights, deterministic for ``seed``.

    ``misbehaving`` adds devices with a behaviour (``{"slow": 1, "reset": 2}``) on top of the
    mix; they use a Hikvision camera profile, so that they look worth probing.
    """
    if count < 0:
        raise UsageError("the device count cannot be negative")
    weights = parse_mix(mix) if mix is None or isinstance(mix, str) else dict(mix)
    profiles = load_profiles()
    groups: list[tuple[str, int]] = []
    for key, weight in weights.items():
        if not _profiles_for(key, profiles):
            known = sorted({g for p in profiles.values() for g in p.groups} | set(profiles))
            raise UsageError(f"mix name {key!r} matches no lab profile; known: {', '.join(known)}")
        if weight > 0:
            groups.append((key, weight))
    bad = [b for b in (misbehaving or {}) if b not in BEHAVIOURS]
    if bad:
        raise UsageError(f"unknown behaviour {bad[0]!r}; known: {', '.join(BEHAVIOURS)}")
    extra = sum((misbehaving or {}).values())
    rng = random.Random(seed)
    chosen: list[tuple[Profile, str | None]] = []
    for key, n in _apportion(count, groups).items():
        members = _profiles_for(key, profiles)
        chosen.extend((members[i % len(members)], None) for i in range(n))
    for name, n in sorted((misbehaving or {}).items()):
        chosen.extend((profiles["hikvision-ipc"], name) for _ in range(n))
    rng.shuffle(chosen)
    addresses, gateway, netmask = lab_addresses(subnet, count + extra)
    specs: list[DeviceSpec] = []
    macs: set[str] = set()
    serials: set[str] = set()
    for index, ((profile, behaviour), address) in enumerate(zip(chosen, addresses, strict=True)):
        mac = make_mac(profile, rng)
        while mac in macs:
            mac = make_mac(profile, rng)
        serial = make_serial(profile, rng)
        while serial in serials:
            serial = make_serial(profile, rng)
        macs.add(mac)
        serials.add(serial)
        specs.append(DeviceSpec(
            address=address, profile=profile.id, mac=mac, serial=serial,
            uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            settings=_vary_settings(profile, rng, gateway, index),
            behaviour=behaviour, netmask=netmask,
        ))  # fmt: skip
    return specs
