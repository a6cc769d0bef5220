"""Which of a device's open ports interrogation tries as web ports.

Apart from :mod:`camaudit.probes.interrogate` so that the scan can plan its per-host work from
the sweep's ports without importing the ONVIF and HTTP client stacks first (issue 15: they are
imported while the network is slow, not before the first packet goes out).
"""

from __future__ import annotations

from collections.abc import Sequence

#: Raw printing (JetDirect): a printer prints whatever is sent to these ports, so the probes
#: send nothing there and do not wait either (nmap-service-probes: ``Exclude T:9100-9107``;
#: nmap(1), --allports: "some printers simply print anything sent to that port, leading to dozens
#: of pages of HTTP GET requests"). The sweep's open port is all that is recorded. A user who
#: knows one carries another service says so with a protocol override, which takes precedence
#: over this in the probe stage (not in interrogation).
PRINT_PORTS = range(9100, 9108)

#: Ports that never carry HTTP on cameras (fingerprinting.md: 554 RTSP, 8000 Hikvision SDK,
#: 37777/37778 Dahua private, 34567 Xiongmai; plus the usual non-HTTP services), and the raw
#: printing ports, where a printer would print the request (PRINT_PORTS).
NON_HTTP_PORTS = frozenset({21, 22, 23, 25, 53, 110, 139, 445, 554, 1935, 3702, 5554, 8000, 8554,
                            34567, 37777, 37778, *PRINT_PORTS})
#: Web ports in the order cameras use them; other open ports follow in numeric order.
PREFERRED_HTTP_PORTS = (80, 443, 8080, 81, 88, 8443, 8081, 2020, 8899)
MAX_HTTP_PORTS = 4


def candidate_http_ports(open_ports: Sequence[int]) -> list[int]:
    """The open ports tried as web ports, in the order tried: camera web ports first, ports
    that never carry HTTP left out, at most MAX_HTTP_PORTS."""
    ports = [p for p in dict.fromkeys(open_ports) if p not in NON_HTTP_PORTS]
    ports.sort(key=lambda p: (PREFERRED_HTTP_PORTS.index(p) if p in PREFERRED_HTTP_PORTS else 99, p))
    return ports[:MAX_HTTP_PORTS]
