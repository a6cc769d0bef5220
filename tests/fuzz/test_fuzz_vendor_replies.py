"""Properties of the vendor API reply parsers: Hikvision ISAPI XML and Dahua CGI key=value text
(camaudit.protocols.isapi, camaudit.protocols.dahua_cgi). Any reply parses to data or None."""

from __future__ import annotations

from fuzzkit import bounded, fuzz_bytes, observation_values
from hypothesis import example, given
from hypothesis import strategies as st

from camaudit.protocols import dahua_cgi, isapi

NS = b' xmlns="http://www.hikvision.com/ver20/XMLSchema"'
ISAPI_SEEDS = observation_values("isapi_device_info") + [
    b"<DeviceInfo" + NS + b"><deviceName>IP CAMERA</deviceName><model>DS-2CD2385G1-I</model></DeviceInfo>",
    b"<NetworkInterfaceList" + NS + b"><NetworkInterface><id>1</id><IPAddress><ipAddress>10.0.0.5</ipAddress>"
    b"<DefaultGateway><ipAddress>10.0.0.1</ipAddress></DefaultGateway><PrimaryDNS><ipAddress>8.8.8.8</ipAddress>"
    b"</PrimaryDNS></IPAddress></NetworkInterface></NetworkInterfaceList>",
    b"<EZVIZ" + NS + b"><enabled>true</enabled><registerStatus>flase</registerStatus><bindStatus>bind</bindStatus>"
    b"<serverAddress><hostName>dev.ezvizlife.com</hostName></serverAddress></EZVIZ>",
    b"<NTPServerList" + NS + b"><NTPServer><addressingFormatType>hostname</addressingFormatType>"
    b"<hostName>time.windows.com</hostName></NTPServer></NTPServerList>",
    b"<DDNSList" + NS + b"><DDNS><enabled>true</enabled><provider>HiDDNS</provider></DDNS></DDNSList>",
    b"<ResponseStatus" + NS + b"><statusCode>4</statusCode><statusString>Invalid Operation</statusString>"
    b"</ResponseStatus>",
]
CGI_SEEDS = observation_values("dahua_cgi") + [
    b"table.Network.eth0.DefaultGateway=10.0.0.1\r\ntable.Network.eth0.DnsServers[0]=8.8.8.8\r\n",
    b"table.NTP.Enable=true\r\ntable.NTP.Address=time.windows.com\r\n",
    b"table.T2UServer.Enable=true\r\ntable.T2UServer.Address=www.easy4ipcloud.com\r\n",
    b"table.UPnP.Enable=true\r\ntable.UPnP.MapTable[0].Enable=true\r\ntable.UPnP.MapTable[0].InnerPort=80\r\n",
    b"table.DDNS[0].Enable=true\r\ntable.DDNS[0].Protocol=Dahua DDNS\r\n",
    b"table.VSP_PaaS.Enable=false\r\ntable.VSP_PaaS.CustomEnable=true\r\n",
]
CGI_TOKENS = (b"[" + b"1" * 5000 + b"]", b"[" + "\u0663".encode() + b"]", b"[99999999999999999999]", b"\n", b"=",
              b"table.UPnP.MapTable[", b"table.DDNS[")


@given(fuzz_bytes(ISAPI_SEEDS), st.booleans())
def test_isapi_parsers_never_raise(data: bytes, as_text: bool) -> None:
    reply: bytes | str = data.decode("utf-8", "replace") if as_text else data
    for parse in (isapi.parse_response_status, isapi.parse_device_info, isapi.parse_network_interfaces,
                  isapi.parse_online_upgrade_server, isapi.parse_ntp_servers, isapi.parse_ddns, isapi.parse_upnp,
                  isapi.parse_upnp_port_status):
        bounded(parse, reply)
    for root in ("EZVIZ", "Ehome"):
        bounded(isapi.parse_platform, reply, root)


@given(st.one_of(fuzz_bytes(CGI_SEEDS, tokens=CGI_TOKENS),
                 st.builds(lambda table, index, key: f"table.{table}[{index}].{key}=1".encode(),
                           st.sampled_from(["UPnP.MapTable", "DDNS"]),
                           st.one_of(st.integers(0, 300), st.sampled_from(["1" * 5000, "\u0663", "9" * 20])),
                           st.sampled_from(["Enable", "Protocol"]))),
       st.booleans())
@example(b"table.UPnP.MapTable[" + b"1" * 5000 + b"].Enable=true", False)
@example(b"table.DDNS[" + b"1" * 5000 + b"].Enable=true", True)
def test_dahua_cgi_parsers_never_raise(data: bytes, as_text: bool) -> None:
    """Regression: a 5000-digit table index made upnp()/ddns() raise ValueError (int() refuses
    more than 4300 digits)."""
    kv = bounded(dahua_cgi.parse_kv, data.decode("utf-8", "replace") if as_text else data)
    if kv is None:
        return
    for read in (dahua_cgi.network_settings, dahua_cgi.ntp_servers, dahua_cgi.t2u_server, dahua_cgi.vsp_paas,
                 dahua_cgi.upnp, dahua_cgi.ddns):
        bounded(read, kv)


@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.\[\]-]{0,30}", fullmatch=True),
                       st.text(st.characters(exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=40)
                       .map(str.strip), max_size=10))
def test_dahua_kv_round_trip(table: dict[str, str]) -> None:
    text = "\r\n".join(f"{key}={value}" for key, value in table.items())
    assert dahua_cgi.parse_kv(text) == (table or None)
