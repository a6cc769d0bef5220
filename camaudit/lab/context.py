"""Per-device rendering context: the values profile templates may name (``{serial}``, ...).

Templates use ``{name}`` for the names in :meth:`DeviceContext.values`; any other brace text is
left alone, so bodies may contain JSON or script braces.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from .plan import DeviceSpec
from .profiles import Profile

#: Lab-wide credentials for digest/Basic auth, ONVIF WS-UsernameToken, ISAPI and Dahua CGI.
#: A lab secret, not a vendor default; it is written into the manifest for the tests and demo.
LAB_USERNAME = "admin"
LAB_PASSWORD = "camaudit-lab"  # noqa: S105 - a published lab credential, not a secret

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def render(template: str, values: Mapping[str, Any]) -> str:
    """Replace ``{name}`` for known names only."""
    return _PLACEHOLDER.sub(lambda m: str(values[m[1]]) if m[1] in values else m[0], template)


@dataclass
class DeviceContext:
    """A device as the servers see it: its spec, profile, actual ports and template values."""

    spec: DeviceSpec
    profile: Profile
    #: service name -> the port actually bound (after any unprivileged-port offset)
    ports: dict[str, int]
    #: profile port -> actual port
    port_map: dict[int, int]
    base: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        spec, profile = self.spec, self.profile
        mac_hex = spec.mac.replace(":", "").lower()
        digest = hashlib.sha256(spec.serial.encode()).hexdigest()
        onvif = profile.service("onvif")
        settings = spec.settings
        firmware = profile.firmware
        self.base = {
            "model": profile.model,
            "firmware": firmware,
            # SADP writes "V5.6.2build 190701": no space before "build" (fingerprinting.md 1.1)
            "sadp_firmware": firmware.replace(" build", "build"),
            "serial": spec.serial,
            "mac": spec.mac.lower(),
            "mac_dash": spec.mac.lower().replace(":", "-"),
            "mac_hex": mac_hex,
            "MAC_HEX": mac_hex.upper(),
            "address": spec.address,
            "netmask": spec.netmask,
            "gateway": settings.get("gateway", ""),
            "http_port": self.ports.get("http", ""),
            "rtsp_port": self.ports.get("rtsp", ""),
            "sdk_port": self.ports.get("hik_sdk", ""),
            "uuid": spec.uuid,
            "uuid_prefix": spec.uuid[:23],
            # Hikvision realm "IP Camera(C2183)" style: a 5-character code per device
            "realm_id": "C" + str(int(digest[:8], 16) % 10000).zfill(4),
            "realm": profile.model,
            "hostname": f"{profile.id}-{spec.address.replace('.', '-')}",
            "onvif_name": onvif.get("onvif_name", profile.model),
            "salt": digest,
            "boot_time": "2024-01-01 00:00:00",
            "hc_platform_enable": "true" if self.cloud_enabled else "flase",
            "last_modified": "Mon, 01 Jan 2024 00:00:00 GMT",
            "hardware_id": profile.services.get("hardware_id", ""),
        }
        self.base["onvif_name"] = render(str(self.base["onvif_name"]), self.base)

    def scopes(self) -> list[str]:
        """The ONVIF scopes (WS-Discovery and GetScopes), URI-escaped: a scope list is space-separated."""
        onvif = self.profile.service("onvif")
        wsd = self.profile.service("wsd")
        templates = wsd["scopes"] if "scopes" in wsd else onvif.get("scopes", [])
        values = dict(self.base, model=quote(self.profile.model, safe=""))
        return [render(str(t), values) for t in templates]

    @property
    def cloud(self) -> dict[str, Any]:
        cloud = self.spec.settings.get("cloud") or {}
        return cloud if isinstance(cloud, dict) else {}

    @property
    def cloud_enabled(self) -> bool:
        return self.cloud.get("kind", "none") != "none" and self.cloud.get("state") in ("enabled", "registered")

    @property
    def cloud_registered(self) -> bool:
        return self.cloud.get("kind", "none") != "none" and self.cloud.get("state") == "registered"

    def values(self, **extra: Any) -> dict[str, Any]:
        """Template values, with fresh per-response ones (dates, nonces) and ``extra``."""
        now = time.time()
        values = dict(self.base)
        values.update(
            date_http=formatdate(now, usegmt=True),
            # Hikvision RTSP Date: "Wed, May 05 2021 21:51:17 GMT" (fingerprinting.md 4.3)
            date_hik_rtsp=time.strftime("%a, %b %d %Y %H:%M:%S GMT", time.gmtime(now)),
            nonce=secrets.token_hex(16),
            nonce8=secrets.token_hex(4),
            opaque=secrets.token_hex(8),
        )
        values.update(extra)
        return values

    def render(self, template: str, **extra: Any) -> str:
        return render(template, self.values(**extra))
