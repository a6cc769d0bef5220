"""`camaudit egress check|listen|import-log|pcap`: is this camera network really closed?

Exit codes (DESIGN.md section 7): `check` exits 1 when the verdict is OPEN or EXPOSED, 0 for
CLOSED or INCONCLUSIVE (a control run: 0 when it reached the listener, 1 when not); 2 for usage
errors; 3 when the run failed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import signal
import sys
from typing import Any

import click

from ..errors import UsageError
from .output import DB_OPTION, JSON_OPTION, SITE_OPTION, open_store, print_json, resolve_site


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if not match:
        raise UsageError(f"{text!r} is not a duration (examples: 3600, 90m, 1h)")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _ports(value: str | None, what: str) -> list[int] | None:
    if value is None:
        return None
    from ..egress.check import parse_port_list

    return parse_port_list(value, what)


@click.group()
def egress() -> None:
    """Verify egress from inside a camera segment, with the evidence.

    Run `egress listen` on a host outside (the internet side), `egress check --control` from a
    vantage known to have egress, then `egress check` from inside the camera segment.
    """


@egress.command()
@click.option("--listener", "listeners", multiple=True, required=True,
              help="Address of the host running `camaudit egress listen` (one IPv4 and/or one IPv6; repeatable).")
@click.option("--tcp-ports", help="TCP ports to probe, e.g. 80,443,8555 (default: common and vendor-cloud ports).")
@click.option("--udp-ports", help="UDP ports to probe (default: 53,123,3478,8800,8900,500,4500,5060,3544,40123).")
@click.option("--dns-zone", help="A DNS zone delegated to the listener: proves whether the resolver recurses.")
@click.option("--resolver", "resolvers", multiple=True, help="Resolver to test instead of /etc/resolv.conf's.")
@click.option("--gateway", help="Gateway to ask for NAT-PMP (default: the default route's).")
@click.option("--proxy", help="HTTP proxy HOST:PORT to try CONNECT through (default: environment, then WPAD).")
@click.option("--no-proxy-discovery", is_flag=True, help="Do not look for a WPAD proxy.")
@click.option("--proxy-port", type=click.IntRange(1, 65535), default=443, show_default=True,
              help="Listener port to CONNECT to through the proxy.")
@click.option("--control", is_flag=True, help="This run is a positive control from a vantage known to have egress.")
@click.option("--control-window", default="1h", show_default=True,
              help="How far apart a control run may be from this run (e.g. 30m, 1h).")
@click.option("--segment", help="Name of the segment (default: the sensor's network, e.g. 10.20.0.0/24).")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds each probe may wait.")
@click.option("--rate", type=float, default=50.0, show_default=True, help="Probes started per second, at most.")
@click.option("--max-hops", type=click.IntRange(0, 30), default=6, show_default=True, help="TTL-stepped probes (0: none).")
@click.option("--ra-wait", type=click.FloatRange(0, 30), default=2.0, show_default=True,
              help="Seconds to wait for IPv6 router advertisements after a solicitation (0: kernel state only).")
@click.option("--no-upnp", is_flag=True, help="Do not search for a UPnP IGD (SSDP multicast).")
@click.option("--no-natpmp", is_flag=True, help="Do not ask the gateway for NAT-PMP/PCP.")
@click.option("--skip", "skip", multiple=True,
              help="A path not to probe (icmp, ntp, proxy, dns/direct, udp/500, or a prefix such as udp/); "
                   "a check that skips anything is never CLOSED.")
@click.option("--vendor-clouds", is_flag=True, help="Also try TCP handshakes to vendor clouds (third-party hosts).")
@SITE_OPTION
@DB_OPTION
@JSON_OPTION
def check(listeners: tuple[str, ...], tcp_ports: str | None, udp_ports: str | None, dns_zone: str | None,
          resolvers: tuple[str, ...], gateway: str | None, proxy: str | None, no_proxy_discovery: bool,
          proxy_port: int, control: bool, control_window: str, segment: str | None, timeout: float, rate: float,
          max_hops: int, ra_wait: float, no_upnp: bool, no_natpmp: bool, skip: tuple[str, ...], vendor_clouds: bool, site: str | None, db_path: str, as_json: bool) -> int:
    """Probe every egress path to the listener and decide: OPEN, EXPOSED, CLOSED or INCONCLUSIVE.

    Example: camaudit egress check --listener 203.0.113.7 --dns-zone egress.example.org --json
    """
    from ..egress.check import CheckOptions
    from ..egress.run import check_and_record

    window = _duration(control_window)
    opts = CheckOptions(listeners=list(listeners), dns_zone=dns_zone, resolvers=list(resolvers) or None,
                        gateway=gateway, proxy=proxy, discover_proxy=not no_proxy_discovery, proxy_port=proxy_port,
                        control=control, segment=segment, timeout=timeout, rate=rate, max_hops=max_hops, ra_wait=ra_wait,
                        upnp=not no_upnp, natpmp=not no_natpmp, vendor_clouds=vendor_clouds, skip=list(skip))
    if (t := _ports(tcp_ports, "--tcp-ports")) is not None:
        opts.tcp_ports = t
    if (u := _ports(udp_ports, "--udp-ports")) is not None:
        opts.udp_ports = u
    with open_store(db_path) as store:
        outcome = check_and_record(store, opts, window_s=window, site=resolve_site(site))
    doc = outcome.to_json()
    if as_json:
        print_json(doc)
    else:
        _print_check(doc)
    if control:
        return 0 if outcome.control_passed else 1
    return 1 if outcome.verdict.verdict in ("OPEN", "EXPOSED") else 0


def _print_check(doc: dict[str, Any]) -> None:
    click.echo(f"{'control run' if doc['control'] else 'verdict'}: {doc['verdict']}"
               + (" (and EXPOSED)" if doc["exposed"] and doc["verdict"] != "EXPOSED" else ""))
    for q in doc["qualifiers"]:
        click.echo(f"  - {q}")
    if doc["missing"]:
        click.echo("missing:")
        for m in doc["missing"]:
            click.echo(f"  - {m}")
    click.echo("paths:")
    for p in doc["paths"]:
        click.echo(f"  {p['path']:<16} {p['result']:<8} {p['evidence'].get('detail', '')}")
    where = f"scan {doc['scan_id']}" if doc.get("scan_id") else f"site {doc.get('site')}"
    click.echo(f"egress run {doc['run_id']} ({where})")


@egress.command()
@click.option("--bind", "binds", multiple=True, required=True,
              help="Address to listen on (repeatable; bind the exact addresses probes are sent to).")
@click.option("--tcp-ports", help="TCP ports to answer (default: the same list `egress check` probes).")
@click.option("--udp-ports", help="UDP ports to answer (default: the same list `egress check` probes).")
@click.option("--dns-zone", help="The zone delegated to this host: answer <nonce>.<zone> with the nonce.")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), help="Append each nonce seen here, as JSON lines.")
@click.option("--no-icmp", is_flag=True, help="Do not watch ICMP echo requests (needs root).")
@click.option("--duration", help="Stop after this long (e.g. 2h); default: until interrupted.")
@click.option("--ready-file", type=click.Path(dir_okay=False), hidden=True)
def listen(binds: tuple[str, ...], tcp_ports: str | None, udp_ports: str | None, dns_zone: str | None,
           log_path: str | None, no_icmp: bool, duration: str | None, ready_file: str | None) -> int:
    """Answer egress probes by echoing their nonce, and log every nonce seen.

    Example: camaudit egress listen --bind 203.0.113.7 --dns-zone egress.example.org --log seen.jsonl
    """
    from ..egress.check import default_ports
    from ..egress.listener import ListenerConfig, serve

    for b in binds:
        try:
            ipaddress.ip_address(b)
        except ValueError:
            raise UsageError(f"--bind {b!r} is not an IP address") from None
    config = ListenerConfig(
        binds=list(binds), tcp_ports=_ports(tcp_ports, "--tcp-ports") or default_ports("tcp"),
        udp_ports=_ports(udp_ports, "--udp-ports") or default_ports("udp"), dns_zone=dns_zone,
        log_path=log_path, icmp=not no_icmp, duration=_duration(duration) if duration else None,
        ready_file=ready_file,
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def ready(listener: Any) -> None:
            click.echo(f"listening: {', '.join(listener.served)}", err=True)
            if listener.failed:
                click.echo(f"not served: {'; '.join(listener.failed)}", err=True)

        listener = await serve(config, stop=stop, on_ready=ready)
        click.echo(f"stopped; {listener.log.count} nonce(s) seen", err=True)
        return 0

    return asyncio.run(main())


@egress.command("import-log")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--control-window", default="1h", show_default=True, help="How far apart a control may be.")
@DB_OPTION
@JSON_OPTION
def import_log(file: str, control_window: str, db_path: str, as_json: bool) -> int:
    """Merge a listener log into the store and re-decide the runs it concerns.

    Example: camaudit egress import-log seen.jsonl --db camaudit.db
    """
    from ..egress.storage import import_listener_log

    with open_store(db_path) as store:
        summary = import_listener_log(store, file, window_s=_duration(control_window))
    doc = summary.to_json()
    if as_json:
        print_json(doc)
    else:
        click.echo(f"{summary.imported} new line(s) imported ({summary.duplicates} already there, "
                   f"{summary.bad} unreadable); {len(summary.matched_runs)} run(s) matched")
        for v in summary.verdicts:
            click.echo(f"  {v.subject}: {v.verdict}")
    return 0


@egress.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@click.option("--live", "iface", help="Capture on this interface instead of reading FILE (root).")
@click.option("--duration", default="60", show_default=True, help="How long to capture live (e.g. 300, 10m).")
@click.option("--devices", "cidrs", multiple=True, help="Device addresses or networks (default: the hosts of --scan).")
@click.option("--scan", "scan_ref", help="Take the devices from this scan (id, prefix or 'latest').")
@SITE_OPTION
@DB_OPTION
@JSON_OPTION
def pcap(file: str | None, iface: str | None, duration: str, cidrs: tuple[str, ...], scan_ref: str | None,
         site: str | None, db_path: str, as_json: bool) -> int:
    """Find flows between the devices and the internet, and vendor-cloud lookups, in a capture.

    Example: camaudit egress pcap span.pcap --devices 10.20.0.0/24 --json
    """
    from ..egress.run import pcap_and_record

    if bool(file) == bool(iface):
        raise UsageError("give a capture FILE or --live IFACE (one of them)")
    with open_store(db_path) as store:
        doc = pcap_and_record(store, file=file, iface=iface, duration=_duration(duration), cidrs=list(cidrs),
                              scan_ref=scan_ref, site=resolve_site(site) if site or not scan_ref else None)
    if as_json:
        print_json(doc)
    else:
        click.echo(f"{doc['packets']} packets from {doc['start']} to {doc['end']}")
        for f in doc["flows"]:
            click.echo(f"  {f['device']} -> {f['remote']} {f['proto']}/{f['port']} {f['state']}")
        for q in doc["lookups"]:
            click.echo(f"  {q['device']} looked up {q['qname']} ({q['vendor']})"
                       + (f" -> {', '.join(q['external_answers'])}" if q["external_answers"] else ""))
        for v in doc["verdicts"]:
            click.echo(f"  {v['subject']}: {v['verdict']}")
    return 1 if any(v["verdict"] in ("OPEN", "EXPOSED") for v in doc["verdicts"]) else 0
