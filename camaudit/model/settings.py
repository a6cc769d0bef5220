"""What a device says about its own network and cloud links (DESIGN.md section 5, device_config).

``None`` always means *not verified*: camaudit could not read it (no credentials, a 401, a 404,
a timeout). An empty list means the device was read and reported nothing (no gateway, say).
Never read "not verified" as "off" (reference/egress.md section 2.5). Each not-verified read
is a :class:`Reason`: a code (``auth_required``, ``not_found``, ``timed_out`` ...) with the read's
label (``what``), its stable name (``read``, e.g. ``isapi:EZVIZ``, which the verdict logic decides
on) and its port; the words are the report layer's.

The probes fill it in (camaudit.probes), egress verification decides on it, the store keeps it:
a type that crosses stages, so it lives here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .verdicts import Reason, english, reasons_from_json, reasons_to_json


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
    #: e.g. Reason("auth_required", {"what": "ONVIF GetDNS", "read": "onvif:GetDNS", "port": 80})
    not_verified: list[Reason] = field(default_factory=list)
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

    def __post_init__(self) -> None:
        # Settings read back from JSON (a 0.1 store's sentences, or flat reasons) become reasons.
        self.not_verified = reasons_from_json(list(self.not_verified))

    @property
    def not_verified_text(self) -> list[str]:
        """The not-verified reads in English."""
        return english(self.not_verified)

    def not_verified_once(self, reason: Reason) -> None:
        if reason not in self.not_verified:
            self.not_verified.append(reason)

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
            # English sentences for readers of the JSON, and the reasons themselves
            "not_verified": english(self.not_verified),
            "not_verified_codes": reasons_to_json(self.not_verified),
            "details": self.details,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DeviceSettings:
        """The inverse of :meth:`to_json`; a document without codes (camaudit 0.1) keeps its
        sentences as legacy reasons."""
        codes = doc.get("not_verified_codes")
        return cls(
            address=str(doc.get("address") or ""),
            gateway=doc.get("gateway"), dns=doc.get("dns"), ntp=doc.get("ntp"),
            cloud=dict(doc.get("cloud") or {}), upnp_mappings=doc.get("upnp_mappings"),
            not_verified=reasons_from_json(codes if codes is not None else doc.get("not_verified")),
            details=dict(doc.get("details") or {}),
        )


def _merge(current: list[str] | None, values: list[str]) -> list[str]:
    merged = list(current or [])
    for value in values:
        if value not in merged:
            merged.append(value)
    return merged
