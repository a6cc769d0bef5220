"""What a device says about its own network and cloud links (DESIGN.md section 5, device_config).

``None`` always means *not verified*: camaudit could not read it (no credentials, a 401, a 404,
a timeout). An empty list means the device was read and reported nothing (no gateway, say).
Never read "not verified" as "off" (reference/egress.md section 2.5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model import Observation


@dataclass(slots=True)
class DeviceSettings:
    """A device's self-reported network and cloud settings; None = not verified."""

    address: str
    gateway: list[str] | None = None
    dns: list[str] | None = None
    ntp: list[str] | None = None
    #: e.g. {"hik_connect": {"enabled": True, "registered": False, "source": "isapi ..."}}
    cloud: dict[str, Any] = field(default_factory=dict)
    upnp_mappings: list[dict[str, Any]] | None = None
    #: e.g. "ONVIF GetDNS: 401 unauthorised", "ISAPI EZVIZ: 404 not found"
    not_verified: list[str] = field(default_factory=list)
    #: Which source reported each setting, other ONVIF reads (interfaces, protocols, discovery
    #: mode) and the redacted replies kept as evidence.
    details: dict[str, Any] = field(default_factory=dict)

    def add_gateway(self, values: list[str], source: str) -> None:
        self.gateway = _merge(self.gateway, values)
        self._note("gateway", source)

    def add_dns(self, values: list[str], source: str) -> None:
        self.dns = _merge(self.dns, values)
        self._note("dns", source)

    def add_ntp(self, values: list[str], source: str) -> None:
        self.ntp = _merge(self.ntp, values)
        self._note("ntp", source)

    def add_upnp_mappings(self, values: list[dict[str, Any]], source: str) -> None:
        self.upnp_mappings = (self.upnp_mappings or []) + [dict(v, source=source) for v in values]
        self._note("upnp_mappings", source)

    def add_evidence(self, source: str, port: int | None, status: int | None, body: str) -> None:
        """Keep a redacted reply (the caller redacts) as evidence of what the device said."""
        self.details.setdefault("evidence", []).append(
            {"source": source, "port": port, "status": status, "body": body}
        )

    def not_verified_once(self, message: str) -> None:
        if message not in self.not_verified:
            self.not_verified.append(message)

    def _note(self, name: str, source: str) -> None:
        sources = self.details.setdefault("sources", {}).setdefault(name, [])
        if source not in sources:
            sources.append(source)

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "gateway": self.gateway,
            "dns": self.dns,
            "ntp": self.ntp,
            "cloud": self.cloud,
            "upnp_mappings": self.upnp_mappings,
            "not_verified": list(self.not_verified),
            "details": self.details,
        }


@dataclass(slots=True)
class InterrogationReport:
    """The outcome of reading one device: evidence, settings and what went wrong."""

    observations: list[Observation]
    settings: DeviceSettings
    problems: list[str] = field(default_factory=list)


def _merge(current: list[str] | None, values: list[str]) -> list[str]:
    merged = list(current or [])
    for value in values:
        if value not in merged:
            merged.append(value)
    return merged
