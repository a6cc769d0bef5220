"""Small loopback devices for the interrogation tests: HTTP with digest auth, ISAPI, Dahua CGI and
an ONVIF SOAP 1.2 Device service.

Documents are built from the facts in reference/egress.md section 2 (ISAPI and CGI field names
and the values that mean a cloud path) and fingerprinting.md sections 4-5 (realms, DeviceInfo
namespace, serial and firmware formats). Where a reference names the fields but not the exact
document shape (the online-upgrade root element, the UPnP port-status records, DDNS account
fields), the shape here is a labelled stand-in and the parsers under test read fields by name.

Servers listen only on 127.81.x.y (this work's loopback block) on an ephemeral port.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Reply = tuple[int, dict[str, str], "bytes | RawReply"]
Handler = Callable[["Request"], Reply | Awaitable[Reply]]


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    user: str | None = None  # set when digest auth succeeded


@dataclass
class StubServer:
    """An HTTP/1.1 server on one loopback address: routes, digest auth, counters."""

    host: str
    routes: dict[tuple[str, str], Handler] = field(default_factory=dict)
    realm: str = "stub"
    users: dict[str, str] = field(default_factory=dict)
    protected: set[str] = field(default_factory=set)
    #: when True every unknown target needs auth before it 404s (some firmware behaves so)
    auth_before_404: bool = False
    server_header: str = "stub"
    connections: int = 0
    requests: list[tuple[str, str, bool]] = field(default_factory=list)
    auth_failures: int = 0
    port: int = 0
    _server: asyncio.base_events.Server | None = None

    async def start(self) -> StubServer:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> StubServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    body = await reader.readexactly(int(headers["content-length"]))
                request = Request(method, target, headers, body)
                status, extra, payload = await self._respond(request)
                self.requests.append((method, target, "authorization" in headers))
                if isinstance(payload, RawReply):
                    writer.write(payload.data)
                    await writer.drain()
                    if payload.drip:
                        for _ in range(payload.drip):
                            writer.write(b"x")
                            await writer.drain()
                            await asyncio.sleep(0.2)
                    break
                out = [f"HTTP/1.1 {status} X", f"Server: {self.server_header}",
                       f"Content-Length: {len(payload)}"]
                out += [f"{k}: {v}" for k, v in extra.items()]
                writer.write(("\r\n".join(out) + "\r\n\r\n").encode() + payload)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError, asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, request: Request) -> Reply:
        handler = self.routes.get((request.method, request.target))
        needs_auth = request.target.split("?")[0] in self.protected or request.target in self.protected
        if handler is None and self.auth_before_404 and self.users:
            needs_auth = True
        if needs_auth:
            user = self._check_digest(request)
            if user is None:
                nonce = secrets.token_hex(16)
                challenge = f'Digest realm="{self.realm}", qop="auth", nonce="{nonce}", stale="FALSE"'
                return 401, {"WWW-Authenticate": challenge}, b"<html>401 Unauthorized</html>"
            request.user = user
        if handler is None:
            return 404, {}, b"Not Found"
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        return result  # type: ignore[return-value]

    def _check_digest(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("digest "):
            return None
        params = {k.lower(): (v[1:-1] if v.startswith('"') else v)
                  for k, v in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', header[7:])}
        user = params.get("username", "")
        password = self.users.get(user)
        if password is None or params.get("realm") != self.realm or params.get("uri") != request.target:
            self.auth_failures += 1
            return None

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{user}:{self.realm}:{password}")
        ha2 = md5(f"{request.method}:{request.target}")
        expected = md5(f"{ha1}:{params.get('nonce')}:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}")
        if params.get("qop") != "auth" or params.get("response") != expected:
            self.auth_failures += 1
            return None
        return user


@dataclass
class RawReply:
    """Bytes written to the socket as they are (malformed, slow or oversized behaviours); the
    connection closes after them. ``drip`` more bytes follow, one every 0.2 s."""

    data: bytes = b""
    drip: int = 0


def xml_reply(text: str, status: int = 200) -> Reply:
    return status, {"Content-Type": "application/xml"}, text.encode()


def text_reply(text: str, status: int = 200) -> Reply:
    return status, {"Content-Type": "text/plain"}, text.encode()


# --- Hikvision ISAPI (egress.md 2.2; fingerprinting.md 4.1 and 5) -----------------------------

HIK_NS = "http://www.hikvision.com/ver20/XMLSchema"
HIK_REALM = "IP Camera(21388)"  # fingerprinting.md 4.1 (SHARPRTSP)
HIK_SERIAL = "DS-2CD2385G1-I20200414AAWRE33842150"  # fingerprinting.md 5 (HAICAM)
HIK_VERIFICATION_CODE = "QWERTY"
HIK_DDNS_PASSWORD = "ddns-Secret-77"

HIK_DEVICE_INFO = f"""<?xml version="1.0" encoding="UTF-8"?>
<DeviceInfo version="2.0" xmlns="{HIK_NS}">
<deviceName>IP CAMERA</deviceName>
<model>DS-2CD2385G1-I</model>
<serialNumber>{HIK_SERIAL}</serialNumber>
<macAddress>58:50:ed:1f:e3:85</macAddress>
<firmwareVersion>V5.6.2</firmwareVersion>
<firmwareReleasedDate>build 190701</firmwareReleasedDate>
<deviceType>IPCamera</deviceType>
<manufacturer>hikvision</manufacturer>
</DeviceInfo>"""

HIK_INTERFACES = f"""<?xml version="1.0" encoding="UTF-8"?>
<NetworkInterfaceList version="2.0" xmlns="{HIK_NS}">
<NetworkInterface><id>1</id>
<IPAddress><ipVersion>dual</ipVersion><addressingType>static</addressingType>
<ipAddress>10.88.1.20</ipAddress><subnetMask>255.255.255.0</subnetMask>
<ipV6AddressingType>ra</ipV6AddressingType>
<DefaultGateway><ipAddress>10.88.1.1</ipAddress></DefaultGateway>
<PrimaryDNS><ipAddress>8.8.8.8</ipAddress></PrimaryDNS>
<SecondaryDNS><ipAddress>114.114.114.114</ipAddress></SecondaryDNS>
</IPAddress></NetworkInterface>
</NetworkInterfaceList>"""

HIK_EZVIZ = f"""<?xml version="1.0" encoding="UTF-8"?>
<EZVIZ version="2.0" xmlns="{HIK_NS}">
<enabled>true</enabled>
<registerStatus>true</registerStatus>
<serverAddress><addressingFormatType>hostname</addressingFormatType><hostName>litedev.hik-connect.com</hostName></serverAddress>
<bindStatus>bind</bindStatus>
<verificationCode>{HIK_VERIFICATION_CODE}</verificationCode>
</EZVIZ>"""

# Stand-in root element: egress.md 2.2 names only the connectStatus field.
HIK_ONLINE_UPGRADE = f"""<?xml version="1.0" encoding="UTF-8"?>
<OnlineUpgradeServer version="2.0" xmlns="{HIK_NS}"><connectStatus>false</connectStatus></OnlineUpgradeServer>"""

HIK_NTP = f"""<?xml version="1.0" encoding="UTF-8"?>
<NTPServerList version="2.0" xmlns="{HIK_NS}">
<NTPServer><id>1</id><addressingFormatType>hostname</addressingFormatType><hostName>pool.ntp.org</hostName>
<portNo>123</portNo><synchronizeInterval>1440</synchronizeInterval></NTPServer>
</NTPServerList>"""

# Account fields are stand-ins: egress.md 2.5 says DDNS passwords must be redacted.
HIK_DDNS = f"""<?xml version="1.0" encoding="UTF-8"?>
<DDNSList version="2.0" xmlns="{HIK_NS}">
<DDNS><id>1</id><enabled>false</enabled><provider>HiDDNS</provider>
<serverAddress><addressingFormatType>hostname</addressingFormatType><hostName>www.hik-online.com</hostName></serverAddress>
<domain>camera-lobby</domain><userName>ddnsuser</userName><password>{HIK_DDNS_PASSWORD}</password></DDNS>
</DDNSList>"""

HIK_UPNP = f"""<?xml version="1.0" encoding="UTF-8"?>
<UPnP version="2.0" xmlns="{HIK_NS}"><enabled>true</enabled><name>DS-2CD2385G1-I</name></UPnP>"""

# Stand-in record shape: egress.md 2.2 says only "mapping status per port".
HIK_UPNP_STATUS = f"""<?xml version="1.0" encoding="UTF-8"?>
<portStatusList version="2.0" xmlns="{HIK_NS}">
<portStatus><internalPort>80</internalPort><externalPort>8080</externalPort><status>valid</status></portStatus>
</portStatusList>"""


def hikvision_device(host: str, users: dict[str, str]) -> StubServer:
    """A Hikvision-like web server: every ISAPI read needs digest auth; Ehome is absent (404)."""
    docs = {
        "/ISAPI/System/deviceInfo": HIK_DEVICE_INFO,
        "/ISAPI/System/Network/interfaces": HIK_INTERFACES,
        "/ISAPI/System/Network/EZVIZ": HIK_EZVIZ,
        "/ISAPI/System/onlineUpgrade/server": HIK_ONLINE_UPGRADE,
        "/ISAPI/System/time/ntpServers": HIK_NTP,
        "/ISAPI/System/Network/DDNS": HIK_DDNS,
        "/ISAPI/System/Network/UPnP": HIK_UPNP,
        "/ISAPI/System/Network/UPnP/ports/status": HIK_UPNP_STATUS,
    }
    server = StubServer(host, realm=HIK_REALM, users=users, server_header="App-webs/")
    for path, doc in docs.items():
        server.routes[("GET", path)] = lambda _r, d=doc: xml_reply(d)
        server.protected.add(path)
    server.protected.add("/ISAPI/System/Network/Ehome")
    return server


# --- Dahua CGI (egress.md 2.3; fingerprinting.md 4.2 and 5) ----------------------------------

DAHUA_SERIAL = "6C01E93PAG69A7D"  # fingerprinting.md 5 (HAICAM)
DAHUA_REALM = f"Login to {DAHUA_SERIAL}"  # fingerprinting.md 4.2
DAHUA_P2P_KEY = "p2pKeyVerySecret"
DAHUA_DDNS_PASSWORD = "dd-Pass-9"

DAHUA_REPLIES = {
    "/cgi-bin/magicBox.cgi?action=getSystemInfo":
        f"deviceType=IPC-HDW1431T1-S4\r\nserialNumber={DAHUA_SERIAL}\r\n",
    "/cgi-bin/magicBox.cgi?action=getSoftwareVersion": "version=2.800.0000016.0.R,build:2020-06-05\r\n",
    "/cgi-bin/magicBox.cgi?action=getVendor": "vendor=Dahua\r\n",
    "/cgi-bin/magicBox.cgi?action=getDeviceType": "type=IPC-HDW1431T1-S4\r\n",
    "/cgi-bin/configManager.cgi?action=getConfig&name=Network": (
        "table.Network.DefaultInterface=eth0\r\n"
        "table.Network.Hostname=IPC\r\n"
        "table.Network.eth0.DefaultGateway=10.88.1.1\r\n"
        "table.Network.eth0.DhcpEnable=false\r\n"
        "table.Network.eth0.DnsServers[0]=8.8.8.8\r\n"
        "table.Network.eth0.DnsServers[1]=114.114.114.114\r\n"
        "table.Network.eth0.IPAddress=10.88.1.30\r\n"
    ),
    "/cgi-bin/configManager.cgi?action=getConfig&name=NTP": (
        "table.NTP.Address=time.windows.com\r\ntable.NTP.Enable=true\r\ntable.NTP.Port=123\r\n"
    ),
    # Field names and values from the real T2UServer dump in egress.md 2.3 [S18].
    "/cgi-bin/configManager.cgi?action=getConfig&name=T2UServer": (
        "table.T2UServer.Address=www.easy4ipcloud.com\r\n"
        "table.T2UServer.Enable=true\r\n"
        f"table.T2UServer.Key={DAHUA_P2P_KEY}\r\n"
        "table.T2UServer.Port=8800\r\n"
        "table.T2UServer.RegisterPort=12366\r\n"
        "table.T2UServer.RegisterServerEx=p2pregister.easy4ipcloud.com\r\n"
        "table.T2UServer.Type=dhp2p\r\n"
        "table.T2UServer.Username=p2puser\r\n"
    ),
    "/cgi-bin/configManager.cgi?action=getConfig&name=UPnP": (
        "table.UPnP.Enable=true\r\n"
        "table.UPnP.MapTable[0].Enable=true\r\n"
        "table.UPnP.MapTable[0].InnerPort=80\r\n"
        "table.UPnP.MapTable[0].OuterPort=8080\r\n"
        "table.UPnP.MapTable[0].Protocol=TCP\r\n"
    ),
    "/cgi-bin/configManager.cgi?action=getConfig&name=DDNS": (
        "table.DDNS[0].Enable=false\r\n"
        "table.DDNS[0].HostName=lobby.quickddns.com\r\n"
        f"table.DDNS[0].Password={DAHUA_DDNS_PASSWORD}\r\n"
        "table.DDNS[0].Protocol=Quick DDNS\r\n"
    ),
    # Firmware without a table answers an error text (egress.md 2.3: "not present", not "disabled").
    "/cgi-bin/configManager.cgi?action=getConfig&name=VSP_PaaS": "Error\r\nBad Request!\r\n",
}


def dahua_device(host: str, users: dict[str, str]) -> StubServer:
    server = StubServer(host, realm=DAHUA_REALM, users=users, server_header="")
    for target, text in DAHUA_REPLIES.items():
        server.routes[("GET", target)] = lambda _r, t=text: text_reply(t)
        server.protected.add(target)
    return server


# --- ONVIF Device service (SOAP 1.2; egress.md 2.1 for the operations and fields) ------------

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PRE_AUTH = {"GetSystemDateAndTime", "GetServices", "GetCapabilities"}


def _envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{SOAP}" '
        'xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema" '
        'xmlns:ter="http://www.onvif.org/ver10/error">'
        f"<env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


def soap_fault(subcode: str, reason: str) -> bytes:
    return _envelope(
        f"<env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value>{subcode}"
        f"</env:Value></env:Subcode></env:Code><env:Reason><env:Text xml:lang=\"en\">{reason}"
        "</env:Text></env:Reason></env:Fault>"
    )


DEVICE_SKEW = dt.timedelta(minutes=7)


def onvif_bodies(host: str, port: int) -> dict[str, str]:
    now = dt.datetime.now(dt.UTC) + DEVICE_SKEW  # a skewed device clock
    return {
        "GetSystemDateAndTime": (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
            "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime><tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time><tt:Date><tt:Year>{now.year}</tt:Year>"
            f"<tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date></tt:UTCDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        ),
        "GetDeviceInformation": (
            "<tds:GetDeviceInformationResponse><tds:Manufacturer>HIKVISION</tds:Manufacturer>"
            "<tds:Model>DS-2CD2385G1-I</tds:Model><tds:FirmwareVersion>V5.6.2 build 190701</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{HIK_SERIAL}</tds:SerialNumber><tds:HardwareId>88</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        ),
        "GetScopes": (
            "<tds:GetScopesResponse>"
            + "".join(
                f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{s}</tt:ScopeItem></tds:Scopes>"
                for s in (
                    "onvif://www.onvif.org/type/video_encoder",
                    "onvif://www.onvif.org/hardware/DS-2CD2385G1-I",
                    "onvif://www.onvif.org/name/HIKVISION%20DS-2CD2385G1-I",
                    "onvif://www.onvif.org/location/city/hangzhou",
                )
            )
            + "</tds:GetScopesResponse>"
        ),
        "GetServices": (
            "<tds:GetServicesResponse><tds:Service><tds:Namespace>http://www.onvif.org/ver10/device/wsdl"
            f"</tds:Namespace><tds:XAddr>http://{host}:{port}/onvif/device_service</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            "</tds:GetServicesResponse>"
        ),
        "GetNetworkInterfaces": (
            '<tds:GetNetworkInterfacesResponse><tds:NetworkInterfaces token="eth0"><tt:Enabled>true</tt:Enabled>'
            "<tt:Info><tt:Name>eth0</tt:Name><tt:HwAddress>58:50:ed:1f:e3:85</tt:HwAddress><tt:MTU>1500</tt:MTU>"
            "</tt:Info><tt:IPv4><tt:Enabled>true</tt:Enabled><tt:Config><tt:Manual><tt:Address>10.88.1.20"
            "</tt:Address><tt:PrefixLength>24</tt:PrefixLength></tt:Manual><tt:DHCP>false</tt:DHCP>"
            "</tt:Config></tt:IPv4></tds:NetworkInterfaces></tds:GetNetworkInterfacesResponse>"
        ),
        "GetDNS": (
            "<tds:GetDNSResponse><tds:DNSInformation><tt:FromDHCP>false</tt:FromDHCP>"
            "<tt:DNSManual><tt:Type>IPv4</tt:Type><tt:IPv4Address>8.8.8.8</tt:IPv4Address></tt:DNSManual>"
            "</tds:DNSInformation></tds:GetDNSResponse>"
        ),
        "GetNTP": (
            "<tds:GetNTPResponse><tds:NTPInformation><tt:FromDHCP>false</tt:FromDHCP>"
            "<tt:NTPManual><tt:Type>DNS</tt:Type><tt:DNSname>pool.ntp.org</tt:DNSname></tt:NTPManual>"
            "</tds:NTPInformation></tds:GetNTPResponse>"
        ),
        "GetNetworkDefaultGateway": (
            "<tds:GetNetworkDefaultGatewayResponse><tds:NetworkGateway><tt:IPv4Address>10.88.1.1"
            "</tt:IPv4Address></tds:NetworkGateway></tds:GetNetworkDefaultGatewayResponse>"
        ),
        "GetNetworkProtocols": (
            "<tds:GetNetworkProtocolsResponse><tds:NetworkProtocols><tt:Name>HTTP</tt:Name>"
            "<tt:Enabled>true</tt:Enabled><tt:Port>80</tt:Port></tds:NetworkProtocols>"
            "</tds:GetNetworkProtocolsResponse>"
        ),
        "GetDiscoveryMode": (
            "<tds:GetDiscoveryModeResponse><tds:DiscoveryMode>Discoverable</tds:DiscoveryMode>"
            "</tds:GetDiscoveryModeResponse>"
        ),
    }


@dataclass
class OnvifBehaviour:
    users: dict[str, str] = field(default_factory=dict)
    #: operations answered with an ActionNotSupported fault (like ipycam, lab.md 8.1)
    unsupported: set[str] = field(default_factory=set)
    #: answer NotAuthorized with HTTP 401 (True) or HTTP 400 + SOAP fault (False)
    http_401: bool = False
    #: operation -> raw reply bytes (oversized, hostile XML ...)
    raw: dict[str, bytes] = field(default_factory=dict)
    operations_seen: list[tuple[str, bool]] = field(default_factory=list)
    auth_failures: int = 0


def onvif_device(server: StubServer, behaviour: OnvifBehaviour) -> StubServer:
    def handle(request: Request) -> Reply:
        root = ET.fromstring(request.body)
        body = root.find(f"{{{SOAP}}}Body")
        op = body[0].tag.rsplit("}", 1)[-1] if body is not None and len(body) else ""
        token = root.find(f".//{{{WSSE}}}UsernameToken")
        behaviour.operations_seen.append((op, token is not None))
        authorised = _check_token(token, behaviour)
        if token is not None and not authorised:
            behaviour.auth_failures += 1
        if op not in PRE_AUTH and behaviour.users and not authorised:
            if behaviour.http_401:
                return 401, {"Content-Type": "application/soap+xml"}, b""
            return 400, {"Content-Type": "application/soap+xml"}, soap_fault("ter:NotAuthorized",
                                                                          "Sender not Authorized")
        if op in behaviour.raw:
            return 200, {"Content-Type": "application/soap+xml"}, behaviour.raw[op]
        if op in behaviour.unsupported:
            return 400, {"Content-Type": "application/soap+xml"}, soap_fault(
                "ter:ActionNotSupported", f"Action not supported: {op}")
        bodies = onvif_bodies(server.host, server.port)
        if op not in bodies:
            return 400, {"Content-Type": "application/soap+xml"}, soap_fault(
                "ter:ActionNotSupported", f"Action not supported: {op}")
        return 200, {"Content-Type": "application/soap+xml"}, _envelope(bodies[op])

    server.routes[("POST", "/onvif/device_service")] = handle
    return server


def _check_token(token: ET.Element | None, behaviour: OnvifBehaviour) -> bool:
    """WS-Security UsernameToken PasswordDigest: Base64(SHA-1(nonce + created + password))."""
    if token is None:
        return False
    user = token.findtext(f"{{{WSSE}}}Username") or ""
    password = behaviour.users.get(user)
    digest = token.findtext(f"{{{WSSE}}}Password") or ""
    nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
    created = token.findtext(f"{{{WSU}}}Created") or ""
    if password is None:
        return False
    # The device clock runs DEVICE_SKEW ahead: a token must be signed in device time.
    try:
        signed = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return False
    if abs((signed - (dt.datetime.now(dt.UTC) + DEVICE_SKEW)).total_seconds()) > 120:
        return False
    expected = base64.b64encode(
        hashlib.sha1(base64.b64decode(nonce) + created.encode() + password.encode()).digest()
    ).decode()
    return digest == expected


class ConnectionCounter:
    """A loopback TCP listener that only counts connections and bytes: proof nothing was sent."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.port = 0
        self.connections = 0
        self.bytes = 0
        self._server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> ConnectionCounter:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            data = await asyncio.wait_for(reader.read(65536), 1)
            self.bytes += len(data)
        except (TimeoutError, ConnectionError):
            pass
        writer.close()
