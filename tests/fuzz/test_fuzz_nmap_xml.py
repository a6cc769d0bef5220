"""Properties of the nmap XML reader behind `camaudit import nmap` and `identify --nmap-xml`
(camaudit.fingerprint.nmap_xml): whatever the file holds, it reads as a run or is refused with
an InputError (one line for the user), in bounded time; it never raises anything else."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from fuzzkit import bounded, fuzz_bytes
from hypothesis import example, given

from camaudit.errors import InputError
from camaudit.fingerprint.nmap_xml import NmapRun, parse_run

DATA = Path(__file__).resolve().parents[1] / "data" / "nmap"
SEEDS = [(DATA / "lab-sV.xml").read_bytes()[:6000], (DATA / "lab-banners.xml").read_bytes()]
TOKENS = (b'<host><address addr="10.0.0.1" addrtype="ipv4"/>', b'portid="99999999999999999999"', b'start="-1"',
          b"<!ENTITY a \"x\">", b"&a;", b"<port>" * 50, b'servicefp="r(GetRequest,1,"\\x')


@given(fuzz_bytes(SEEDS, tokens=TOKENS))
@example(b'<nmaprun start="9' + b"9" * 400 + b'"><host><address addr="10.0.0.1" addrtype="ipv4"/></host></nmaprun>')
@example(b'<nmaprun><host><address addr="10.0.0.1" addrtype="ipv4"/><ports><port protocol="udp" portid="x">'
         b'<state state="open"/></port></ports></host></nmaprun>')
@example(b'<nmaprun><host><address addr="../../etc" addrtype="ipv4"/></host></nmaprun>')
@example(b'<nmaprun><host><address addr="10.0.0.1" addrtype="ipv4"/><ports><port protocol="tcp" portid="-5">'
         b'<state state="open"/></port><port protocol="tcp" portid="70000"><state state="open"/></port></ports>'
         b"</host></nmaprun>")
def test_nmap_xml_reads_or_refuses_in_one_line(data: bytes) -> None:
    try:
        run = bounded(parse_run, data, origin="f.xml")
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    assert isinstance(run, NmapRun)
    for host in run.hosts:
        ipaddress.ip_address(host.address)  # an address, or the host was not kept
        assert all(0 <= port <= 65535 for _, port in host.open_ports())
