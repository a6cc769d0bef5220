"""Device profiles: what each emulated device answers, as data (``*.yaml`` beside this file).

Every profile is built only from facts and samples in ``../shared/reference/`` and
``../shared/corpus/fingerprints.json`` and lists them under ``cites``; values that no source
gives (a model name, a port layout) are named in ``placeholders`` so nobody mistakes them for
vendor facts. ``tests/lab/test_lab_profiles.py`` checks that the served bytes carry every cited
corpus sample.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from ...errors import ConfigError

#: DESIGN.md section 4: the fixed vendor and device-type vocabularies.
VENDORS = frozenset(
    {"hikvision", "dahua", "axis", "hanwha", "bosch", "uniview", "xiongmai", "other", "unknown"}
)
DEVICE_TYPES = frozenset({"camera", "nvr", "dvr", "doorbell", "encoder", "other"})
#: Services the lab servers know how to speak (camaudit/lab/servers.py).
TCP_SERVICES = frozenset({"http", "rtsp", "hik_sdk", "silent"})
UDP_SERVICES = frozenset({"wsd", "sadp", "dhip"})
SERIAL_FORMATS = frozenset({"hikvision", "dahua", "dahua_oem", "lorex", "generic"})
SECTIONS = ("http", "rtsp", "onvif", "wsd", "sadp", "dhip", "hik_sdk", "isapi", "dahua_cgi")
CLOUD_KINDS = frozenset({"none", "hik_connect", "ezviz", "dahua_p2p"})


@dataclass(frozen=True)
class Profile:
    """One kind of device. ``services`` holds the per-protocol answer data as loaded."""

    id: str
    name: str
    vendor: str
    brand: str | None
    device_type: str
    model: str
    firmware: str
    oui_group: str | None
    ouis: tuple[str, ...]
    serial_format: str
    tcp: tuple[tuple[int, str], ...]
    udp: tuple[str, ...]
    services: dict[str, Any]
    settings: dict[str, Any]
    cites_corpus: tuple[str, ...]
    cites_reference: tuple[str, ...]
    #: per cited sample id, the substrings that are the sampled device's own (serial, nonce):
    #: the served bytes carry this device's values there instead.
    cites_vary: dict[str, tuple[str, ...]] = field(default_factory=dict)
    placeholders: tuple[str, ...] = ()
    groups: tuple[str, ...] = field(default=())

    def service(self, name: str) -> dict[str, Any]:
        """The answer data of one service (``http``, ``rtsp``, ``onvif``, ...), or {}."""
        value = self.services.get(name)
        return value if isinstance(value, dict) else {}

    def default_settings(self) -> dict[str, Any]:
        return copy.deepcopy(self.settings)


def _require(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"lab profile {where}: missing key {key!r}")
    return data[key]


def parse_profile(data: Any, where: str) -> Profile:
    """Validate one profile document and build a :class:`Profile`."""
    if not isinstance(data, dict):
        raise ConfigError(f"lab profile {where}: not a mapping")
    vendor = _require(data, "vendor", where)
    if vendor not in VENDORS:
        raise ConfigError(f"lab profile {where}: vendor {vendor!r} is not in {sorted(VENDORS)}")
    device_type = _require(data, "device_type", where)
    if device_type not in DEVICE_TYPES:
        raise ConfigError(f"lab profile {where}: device_type {device_type!r} unknown")
    serial_format = data.get("serial_format", "generic")
    if serial_format not in SERIAL_FORMATS:
        raise ConfigError(f"lab profile {where}: serial_format {serial_format!r} unknown")
    tcp: list[tuple[int, str]] = []
    for entry in data.get("tcp", []):
        port, service = int(entry["port"]), str(entry["service"])
        if service not in TCP_SERVICES or not 1 <= port <= 65535:
            raise ConfigError(f"lab profile {where}: bad tcp entry {entry!r}")
        tcp.append((port, service))
    udp = tuple(str(s) for s in data.get("udp", []))
    if not set(udp) <= UDP_SERVICES:
        raise ConfigError(f"lab profile {where}: unknown udp service in {udp!r}")
    for needed in {s for _, s in tcp if s in ("http", "rtsp")} | set(udp):
        if needed not in data:
            raise ConfigError(f"lab profile {where}: serves {needed} but has no {needed!r} section")
    settings = data.get("settings") or {}
    cloud = (settings.get("cloud") or {}).get("kind", "none")
    if cloud not in CLOUD_KINDS:
        raise ConfigError(f"lab profile {where}: cloud kind {cloud!r} unknown")
    cites = data.get("cites") or {}
    corpus_ids: list[str] = []
    vary: dict[str, tuple[str, ...]] = {}
    for item in cites.get("corpus") or ():
        if isinstance(item, dict):
            corpus_ids.append(str(item["id"]))
            vary[str(item["id"])] = tuple(str(v) for v in item.get("vary") or ())
        else:
            corpus_ids.append(str(item))
    corpus = tuple(corpus_ids)
    reference = tuple(cites.get("reference") or ())
    if not reference:
        raise ConfigError(f"lab profile {where}: cites.reference is empty; every profile cites its sources")
    services = {key: data[key] for key in SECTIONS if key in data}
    services["hardware_id"] = str(data.get("hardware_id", ""))
    return Profile(
        id=str(_require(data, "id", where)),
        name=str(data.get("name", data["id"])),
        vendor=vendor,
        brand=data.get("brand"),
        device_type=device_type,
        model=str(_require(data, "model", where)),
        firmware=str(_require(data, "firmware", where)),
        oui_group=data.get("oui_group"),
        ouis=tuple(str(o).upper() for o in data.get("ouis") or ()),
        serial_format=serial_format,
        tcp=tuple(tcp),
        udp=udp,
        services=services,
        settings=settings,
        cites_corpus=corpus,
        cites_reference=reference,
        cites_vary=vary,
        placeholders=tuple(data.get("placeholders") or ()),
        groups=tuple(data.get("groups") or ()),
    )


def _merge(base: Any, override: Any) -> Any:
    """Deep-merge two profile documents: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _resolve(name: str, raw: dict[str, dict[str, Any]], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Apply ``extends: <base file stem>`` chains (bases are ``_*.yaml`` files marked abstract)."""
    doc = raw[name]
    parent = doc.get("extends")
    if parent is None:
        return doc
    if parent not in raw or parent in seen:
        raise ConfigError(f"lab profile {name}: cannot extend {parent!r}")
    merged: dict[str, Any] = _merge(_resolve(parent, raw, (*seen, name)), doc)
    merged["abstract"] = bool(doc.get("abstract"))  # a base's flag is not inherited
    return merged


_CACHE: dict[str, Profile] | None = None


def load_profiles() -> dict[str, Profile]:
    """All shipped profiles by id (parsed once per process; treat the result as read-only)."""
    global _CACHE
    if _CACHE is None:
        raw: dict[str, dict[str, Any]] = {}
        for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                doc = yaml.safe_load(entry.read_text(encoding="utf-8"))
                if not isinstance(doc, dict):
                    raise ConfigError(f"lab profile {entry.name}: not a mapping")
                raw[entry.name.removesuffix(".yaml")] = doc
        profiles: dict[str, Profile] = {}
        for name, doc in raw.items():
            if doc.get("abstract"):
                continue
            profile = parse_profile(_resolve(name, raw), f"{name}.yaml")
            if profile.id in profiles:
                raise ConfigError(f"lab profile id {profile.id!r} is defined twice")
            profiles[profile.id] = profile
        _CACHE = profiles
    return _CACHE


__all__ = ["Profile", "load_profiles", "parse_profile", "VENDORS", "DEVICE_TYPES"]
