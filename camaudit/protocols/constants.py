"""Spec-named values for the UDP discovery protocols (WS-Discovery, Hikvision SADP, Dahua DHIP).

Every value cites where it comes from: the OASIS specifications for WS-Discovery and
SOAP-over-UDP, and reference/fingerprinting.md sections 1-3 for the vendor protocols.
"""

from __future__ import annotations

# --- WS-Discovery (ONVIF) -- reference/fingerprinting.md section 3 -------------------------------

#: WS-Discovery port and IPv4 group [NMAP nselib/wsdd.lua; US Wsdiscovery.cs].
WSD_PORT = 3702
WSD_MULTICAST_V4 = "239.255.255.250"
WSD_MULTICAST_V6 = "ff02::c"

NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
#: ONVIF NetworkVideoTransmitter type namespace (dn) and the ONVIF device WSDL namespace (tds).
NS_ONVIF_NETWORK = "http://www.onvif.org/ver10/network/wsdl"
NS_ONVIF_DEVICE = "http://www.onvif.org/ver10/device/wsdl"
#: Devices Profile for Web Services (wsdp): the type that Windows hosts, printers and wsdd
#: answer (lab.md section 8.5).
NS_DEVPROF = "http://schemas.xmlsoap.org/ws/2006/02/devprof"

WSD_ACTION_PROBE = NS_WSD + "/Probe"
WSD_ACTION_PROBE_MATCHES = NS_WSD + "/ProbeMatches"
#: Probes are addressed to this well-known URN (WS-Discovery 2005/04 section 2.4).
WSD_TO_DISCOVERY = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"

#: What we ask for: HAICAM probes ``dn:NetworkVideoTransmitter tds:Device``
#: (reference/fingerprinting.md section 3).
WSD_PROBE_TYPES = "dn:NetworkVideoTransmitter tds:Device"
#: Asked of each unicast target besides the camera types: a WS-Discovery device that is not a
#: camera (a Windows host, a printer, wsdd) answers only Probes whose Types include
#: ``wsdp:Device``, never ONVIF ones nor untyped ones (lab.md section 8.5). Its answer is not
#: evidence of a camera; it says the host was heard, so unicast discovery need not listen out its
#: whole window for a camera answer that will never come (issue 15: one such host alone took
#: 2.7 s). Not multicast: there every such host on the segment would answer, for nothing.
WSD_HOST_PROBE_TYPES = "wsdp:Device"
#: Local names of the Types that make a ProbeMatch a camera's. Other WS-Discovery devices
#: (printers, Windows hosts) answer too and are dropped (fingerprinting.md section 3).
WSD_CAMERA_TYPES = frozenset({"NetworkVideoTransmitter", "Device"})

#: A WS-Discovery message larger than this is refused unparsed: wsdd's WSD_MAX_LEN
#: (STYLE.md section C). Real ProbeMatches are 1-3 KiB.
WSD_MAX_LEN = 32_767

# --- SOAP-over-UDP 1.1, Appendix I (example retransmission algorithm) -----------------------------
# Each datagram is repeated this many more times; the first repeat waits a random delay in
# [UDP_MIN_DELAY, UDP_MAX_DELAY], and each following wait doubles, capped at UDP_UPPER_DELAY.
# Repeats carry the same MessageID, so a responder answers once (lab.md section 4).
# Values as christgau/wsdd uses them (STYLE.md section C: MULTICAST_UDP_REPEAT 4 and
# UNICAST_UDP_REPEAT 2 transmissions in all, i.e. 3 and 1 repeats after the first send).
MULTICAST_UDP_REPEAT = 3
UNICAST_UDP_REPEAT = 1
UDP_MIN_DELAY = 0.050
UDP_MAX_DELAY = 0.250
UDP_UPPER_DELAY = 0.500

# --- Hikvision SADP (UDP/XML variant) -- reference/fingerprinting.md section 1.1 ----------------

#: [US Hikvision.cs; HIKTOOLS sadp/client.py; HIKTOOLING scanner.go; HAICAM hikvisionProbe]
SADP_PORT = 37020
SADP_MULTICAST_V4 = "239.255.255.250"
#: The only SADP message camaudit sends: a read-only inquiry. Configuration commands exist
#: (update IP, reset password) and must never be sent (fingerprinting.md section 1.1).
SADP_INQUIRY_TYPE = "inquiry"
SADP_MAX_LEN = 32_767

# --- Dahua DHIP discovery -- reference/fingerprinting.md section 2.1 -----------------------------

#: [US Dahua2.cs; HAICAM dahuaProbe; RROLLER discovery.py]
DHIP_PORT = 37810
DHIP_MULTICAST_V4 = "239.255.255.251"
DHIP_MAGIC = b"DHIP"
DHIP_HEADER_SIZE = 32
DHIP_SEARCH_METHOD = "DHDiscover.search"
DHIP_REPLY_METHOD = "client.notifyDevInfo"
DHIP_MAX_LEN = 32_767

#: Multicast TTL: one L2 segment is all discovery needs (lab.md section 4).
MULTICAST_TTL = 1

#: Observation ``source`` names, one per protocol.
SOURCE_WSD = "discovery.wsd"
SOURCE_SADP = "discovery.sadp"
SOURCE_DHIP = "discovery.dhip"
SOURCE_ARP = "discovery.arp"


def normalize_mac(text: str | None) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` (DESIGN.md section 3) from the spellings devices use: SADP's
    ``58-50-ed-1f-e3-85``, ONVIF's ``58:50:ed:1f:e3:85``, DHIP's, or bare hex. None when the
    text is not a MAC address."""
    if not text:
        return None
    digits = "".join(ch for ch in text.strip().lower() if ch not in ":-. ")
    if len(digits) != 12 or any(ch not in "0123456789abcdef" for ch in digits):
        return None
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))
