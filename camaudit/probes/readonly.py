"""The read-only allowlist: the only operations camaudit ever sends to a device.

camaudit audits devices it does not own; it must never change one, make one reach out, or
start anything on it (reference/egress.md section 2.5). Every outgoing ONVIF operation and
every outgoing HTTP request goes through :func:`ensure_onvif_allowed` or
:func:`ensure_http_allowed` *before* a connection is opened; anything not on the fixed lists
below raises :class:`ReadOnlyViolation`. The lists are closed on purpose: adding an endpoint is a
reviewed code change, never configuration.
"""

from __future__ import annotations

from ..errors import CamauditError

#: ONVIF Device service operations camaudit may call (issue 4 item 5; reference/egress.md
#: section 2.1 names their access classes). All are reads: ``Get*`` only.
ONVIF_READ_OPERATIONS: frozenset[str] = frozenset(
    {
        "GetSystemDateAndTime",  # PRE_AUTH
        "GetDeviceInformation",
        "GetScopes",
        "GetServices",  # PRE_AUTH
        "GetCapabilities",  # PRE_AUTH
        "GetNetworkInterfaces",  # READ_SYSTEM
        "GetDNS",  # READ_SYSTEM
        "GetNTP",  # READ_SYSTEM
        "GetNetworkDefaultGateway",  # READ_SYSTEM
        "GetNetworkProtocols",  # READ_SYSTEM
        "GetDiscoveryMode",  # READ_SYSTEM
    }
)

#: The one HTTP request shape the ONVIF transport may send: a SOAP POST to the device service.
#: The operation inside the body is checked separately against ONVIF_READ_OPERATIONS.
ONVIF_HTTP_ENDPOINTS: frozenset[tuple[str, str]] = frozenset({("POST", "/onvif/device_service")})

#: Vendor API reads, as (method, request target) pairs. A target matches only exactly, so no
#: query string, sub-path or suffix can be smuggled onto an allowed read. Sources:
#: Hikvision ISAPI, reference/egress.md section 2.2; Dahua CGI, section 2.3 and
#: fingerprinting.md section 4.2.
HTTP_READ_ENDPOINTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("GET", "/ISAPI/System/deviceInfo"),
        ("GET", "/ISAPI/System/Network/interfaces"),
        ("GET", "/ISAPI/System/Network/EZVIZ"),
        ("GET", "/ISAPI/System/Network/Ehome"),
        ("GET", "/ISAPI/System/time/ntpServers"),
        ("GET", "/ISAPI/System/Network/DDNS"),
        ("GET", "/ISAPI/System/Network/UPnP"),
        ("GET", "/ISAPI/System/Network/UPnP/ports/status"),
        ("GET", "/ISAPI/System/onlineUpgrade/server"),
        ("GET", "/cgi-bin/magicBox.cgi?action=getSystemInfo"),
        ("GET", "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"),
        ("GET", "/cgi-bin/magicBox.cgi?action=getVendor"),
        ("GET", "/cgi-bin/magicBox.cgi?action=getDeviceType"),
        ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=Network"),
        ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=NTP"),
        ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=T2UServer"),
        ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=VSP_PaaS"),
        ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=UPnP"),
        ("GET", "/cgi-bin/configManager.cgi?action=getConfig&name=DDNS"),
    }
)

#: Defence in depth: fragments that mark endpoints which change a device or make it reach out
#: (egress.md section 2.5: ``onlineUpgrade/version?check=true``, test buttons, enabling cloud
#: or P2P, UPnP refresh; fingerprinting.md section 4: exploit paths). Checked even for targets
#: on the allowlist, so a mistaken allowlist edit still fails closed.
_FORBIDDEN_FRAGMENTS: tuple[str, ...] = (
    "check=",
    "onlineupgrade/version",
    "onlineupgrade/upgrade",
    "action=set",
    "action=test",
    "/test",
    "reboot",
    "factory",
    "firmwareupgrade",
    "/updatefirmware",
    "restore",
    "refresh",
    "/sdk/",
    "/rpc2",
    "activate",
    "/security/",
)

_SAFE_TARGET_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_-.?=&"
)


class ReadOnlyViolation(CamauditError):
    """camaudit was about to send something that is not a known read. A bug, never a device fault."""

    exit_code = 3


def ensure_onvif_allowed(operation: str) -> None:
    """Raise unless ``operation`` is an allowlisted ONVIF read."""
    if operation not in ONVIF_READ_OPERATIONS:
        raise ReadOnlyViolation(
            f"refused to send ONVIF operation {operation!r}: camaudit only reads from devices"
        )


def ensure_http_allowed(method: str, target: str) -> None:
    """Raise unless (method, request target) is an allowlisted vendor-API read."""
    _ensure_target_shape(method, target)
    if (method, target) not in HTTP_READ_ENDPOINTS:
        raise ReadOnlyViolation(
            f"refused to send {method} {target}: not on camaudit's read-only allowlist"
        )


def ensure_onvif_http_allowed(method: str, target: str) -> None:
    """Raise unless this is the ONVIF SOAP POST to the device service."""
    _ensure_target_shape(method, target)
    if (method, target) not in ONVIF_HTTP_ENDPOINTS:
        raise ReadOnlyViolation(
            f"refused to send {method} {target}: the ONVIF client only posts to the device service"
        )


def _ensure_target_shape(method: str, target: str) -> None:
    # Percent-encoding, dot segments and fragments could disguise a different endpoint behind
    # an allowed-looking string; none of the allowed targets needs them.
    if (
        not target.startswith("/")
        or ".." in target
        or any(ch not in _SAFE_TARGET_CHARS for ch in target)
    ):
        raise ReadOnlyViolation(f"refused to send {method} {target!r}: unusual request target")
    lowered = target.lower()
    for fragment in _FORBIDDEN_FRAGMENTS:
        if fragment in lowered:
            raise ReadOnlyViolation(
                f"refused to send {method} {target}: it could change the device or make it reach out"
            )
