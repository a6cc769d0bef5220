"""`camaudit scan`, `camaudit scans`, `camaudit show`."""

from __future__ import annotations

import ipaddress
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from ..audit import run_scan, scan_findings, scan_hosts
from ..config import STALE_AFTER, load_config, parse_ports
from ..errors import ConfigError
from ..model import FindingSummary, Host
from .output import DB_OPTION, JSON_OPTION, SITE_OPTION, open_store, print_json, progress_bar

STALE_AFTER_OPTION = click.option(
    "--stale-after", type=click.FloatRange(min=0, min_open=True), default=STALE_AFTER, show_default=True,
    help="Seconds without a heartbeat after which a running scan counts as killed and is marked interrupted.",
)


def _ports(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return parse_ports(value)
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--exclude", multiple=True, help="Addresses, networks, ranges or @file to leave out (repeatable).")
@DB_OPTION
@JSON_OPTION
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A camaudit.toml with your defaults.")
@click.option("--ports", callback=_ports, help="TCP ports to sweep, e.g. 80,554,8000-8010 (default: the camera list).")
@click.option("--engine", type=click.Choice(["builtin", "nmap"]), help="Port sweep engine (default builtin).")
@click.option("--rate", type=click.FloatRange(min=0), help="New connections per second, all targets (0 = no cap).")
@click.option("--concurrency", type=click.IntRange(min=1), help="Open connections at once, all targets.")
@click.option("--per-host", type=click.IntRange(min=1), help="Open connections at once to one address.")
@click.option("--connect-timeout", type=click.FloatRange(min=0.01), help="Seconds to wait for a TCP handshake.")
@click.option("--probe-timeout", type=click.FloatRange(min=0.1), help="Seconds one service probe may take.")
@click.option("--sweep-only", is_flag=True, help="Stop after the port sweep: a quick port inventory, like nmap -sT.")
@click.option("--discovery/--no-discovery", default=None, help="Ask targets by ONVIF WS-Discovery, SADP and DHIP (default on).")
@click.option("--multicast/--no-multicast", default=None, help="Also discover by multicast on target networks (default on).")
@click.option("--interface", "interfaces", multiple=True, help="Interface to multicast and ARP on (repeatable).")
@click.option("--allow-public", is_flag=True, help="Allow public (internet) addresses as targets.")
@click.option("--max-hosts", type=click.IntRange(min=1), help="Raise the cap on addresses per scan (default 65,536).")
@click.option("--credentials", "credentials_path", type=click.Path(dir_okay=False),
              help="Device credentials file (YAML/TOML; per address, CIDR or vendor) for read-only API reads.")
@click.option("--ask-credentials", is_flag=True, help="Prompt for one device username and password.")
@click.option("--interrogate/--no-interrogate", default=None, help="Read-only ONVIF, ISAPI and Dahua CGI reads (default on).")
@click.option("--listener", "listeners", multiple=True,
              help="Verify egress from here: the address of a `camaudit egress listen` outside (IPv4 and/or IPv6).")
@click.option("--dns-zone", help="With --listener: a zone whose name server is the listener, for DNS probes.")
@click.option("--resolver", "resolvers", multiple=True, help="With --listener: resolver to test (default: the system's).")
@click.option("--egress-tcp-ports", callback=_ports, help="With --listener: TCP ports to probe (default: vendor cloud ports and more).")
@click.option("--egress-udp-ports", callback=_ports, help="With --listener: UDP ports to probe.")
@click.option("--no-upnp", is_flag=True, help="With --listener: no SSDP multicast search for a UPnP gateway.")
@click.option("--no-natpmp", is_flag=True, help="With --listener: no NAT-PMP/PCP query to the default gateway.")
@click.option("--no-proxy-discovery", is_flag=True, help="With --listener: no WPAD lookup for a proxy.")
@click.option("--ra-wait", type=click.FloatRange(min=0, max=30), help="With --listener: seconds to wait for IPv6 router advertisements (0: none).")
@click.option("--max-hops", type=click.IntRange(min=0, max=30), help="With --listener: TTL-stepped probes (0: none).")
@click.option("--egress-skip", multiple=True, help="With --listener: a path not to probe (icmp, ntp, udp/...); never CLOSED then.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), help="Findings policy (default: config/policy.yaml).")
@click.option("--fail-on", type=click.Choice(["info", "low", "medium", "high", "critical", "none"]), default="none",
              show_default=True, help="Exit 1 when a finding is at or above this severity (by default findings "
                                      "do not change the exit code).")
@click.option("--scan-id-file", "scan_id_file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the scan's id to FILE once it is recorded (removed first, so a scan that fails before "
                   "recording leaves none): `report --scan-id-from FILE` then reports this scan or nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@SITE_OPTION
def scan(
    targets: tuple[str, ...],
    exclude: tuple[str, ...],
    db_path: str,
    as_json: bool,
    config_path: str | None,
    ports: tuple[int, ...] | None,
    engine: str | None,
    rate: float | None,
    concurrency: int | None,
    per_host: int | None,
    connect_timeout: float | None,
    probe_timeout: float | None,
    sweep_only: bool,
    discovery: bool | None,
    multicast: bool | None,
    interfaces: tuple[str, ...],
    allow_public: bool,
    max_hosts: int | None,
    credentials_path: str | None,
    ask_credentials: bool,
    listeners: tuple[str, ...],
    dns_zone: str | None,
    resolvers: tuple[str, ...],
    egress_tcp_ports: tuple[int, ...] | None,
    egress_udp_ports: tuple[int, ...] | None,
    no_upnp: bool,
    no_natpmp: bool,
    no_proxy_discovery: bool,
    ra_wait: float | None,
    max_hops: int | None,
    egress_skip: tuple[str, ...],
    interrogate: bool | None,
    policy_path: str | None,
    fail_on: str,
    scan_id_file: str | None,
    quiet: bool,
    site: str | None,
) -> int:
    """Sweep, probe, identify and record the cameras in TARGETS.

    TARGETS are addresses, CIDR networks, ranges (10.0.0.1-10.0.0.50 or 10.0.0.1-50) and @FILE
    lists (one target per line). Public addresses are refused unless --allow-public.

    Example:

        camaudit scan 10.20.0.0/24 --db audit.db
    """
    if scan_id_file is not None:
        _forget_scan_id(scan_id_file)
    config = load_config(
        config_path,
        targets=list(targets),
        exclude=list(exclude),
        db_path=db_path,
        ports=ports,
        engine=engine,
        rate=rate,
        concurrency=concurrency,
        per_host=per_host,
        connect_timeout=connect_timeout,
        probe_timeout=probe_timeout,
        sweep_only=sweep_only or None,
        discovery_enabled=discovery,
        discovery_multicast=multicast,
        discovery_interfaces=list(interfaces) or None,
        allow_public=allow_public or None,
        max_hosts=max_hosts,
        policy_path=policy_path,
        interrogate=interrogate,
        credentials_path=credentials_path,
        egress_listeners=list(listeners) or None,
        egress_dns_zone=dns_zone,
        egress_resolvers=list(resolvers) or None,
        egress_tcp_ports=egress_tcp_ports,
        egress_udp_ports=egress_udp_ports,
        egress_upnp=False if no_upnp else None,
        egress_natpmp=False if no_natpmp else None,
        egress_discover_proxy=False if no_proxy_discovery else None,
        egress_ra_wait=ra_wait,
        egress_max_hops=max_hops,
        egress_skip=list(egress_skip) or None,
        site=_site(site),
    )
    credentials = None
    if ask_credentials:
        from ..credentials import prompt_credentials

        credentials = prompt_credentials()
    with progress_bar(not quiet) as progress:
        result = run_scan(config, progress=progress, credentials=credentials)
    if scan_id_file is not None:
        from ..report import write_atomically

        write_atomically(scan_id_file, result.scan_id + "\n")
    # Each host and each finding as recorded, read back from the store one at a time: the scan
    # keeps no host's evidence in memory once it is identified, nor a finding's (issue 15).
    hosts = scan_hosts(config.db_path, result.scan_id)
    if as_json:
        # Streamed host by host: the same bytes as print_json, without the whole text at once.
        findings = scan_findings(config.db_path, result.scan_id) if result.finding_summary.total else ()
        result.write_json(lambda chunk: click.echo(chunk, nl=False), hosts, findings)
        click.echo()
    else:
        _print_summary(result.to_json([], []) | {"sweep_only": bool(sweep_only)}, hosts, result.finding_summary,
                       db_path)
    if result.status != "complete":
        return 3
    return 1 if result.finding_summary.at_least(fail_on) else 0


def _forget_scan_id(path: str) -> None:
    """Remove the id an earlier scan left, before anything can fail: a report that reads the
    file must never find the previous scan's id after this one failed."""
    from ..errors import UsageError

    try:
        Path(path).unlink(missing_ok=True)
    except IsADirectoryError:
        raise UsageError(f"--scan-id-file {path}: a folder, not a file") from None
    except OSError as exc:
        raise UsageError(f"--scan-id-file {path}: cannot remove the previous id: {exc.strerror or exc}") from None


def _site(site: str | None) -> str | None:
    from ..config import site_name

    return site_name(site) if site is not None else None


def egress_lines(egress: dict[str, Any]) -> list[str]:
    """The console's account of a scan's egress verification: the segment's verdict first, the
    one the report shows (the roll-up of the sensor's check and every device), then the sensor's
    own check from this vantage, named as such, so the two never seem to disagree."""
    lines = []
    segment = egress.get("segment_verdict")
    if segment:
        lines.append(f"egress verdict of segment {segment['subject']}: {segment['verdict']}")
        lines += [f"  missing: {gap}" for gap in segment.get("missing", [])[:5]]
        more = len(segment.get("missing", [])) - 5
        if more > 0:
            lines.append(f"  ... {more} more in the report")
    listeners = ", ".join(egress.get("listeners") or [])
    lines.append(f"{'  ' if segment else ''}the sensor's own check from this vantage (listener {listeners}): "
                 f"{egress['verdict']}" + (f" ({'; '.join(egress['qualifiers'][:3])})" if egress.get("qualifiers") else ""))
    if not segment:
        lines += [f"  missing: {gap}" for gap in egress.get("missing", [])[:5]]
    return lines


#: Rows printed as one block of the console's table of hosts: a scan of thousands of hosts is
#: printed a block at a time, never laid out whole in memory (issue 15: a table of 5,000 hosts
#: held about 11 MB).
TABLE_BLOCK = 256
#: The widest a column of the table is made; longer texts fold onto the next line.
_WIDEST = 40


def _host_row(host: Host) -> list[str]:
    ident = host.identity
    return [
        host.address,
        ",".join(str(p) for p in host.ports),
        ident.vendor if ident else "",
        (ident.brand if ident else None) or "",
        (ident.model if ident else None) or "",
        (ident.firmware if ident else None) or "",
        f"{round(ident.confidence, 3):.2f}" if ident else "",
        (host.verdict or {}).get("verdict", ""),
    ]


def print_hosts_table(console: Any, title: str, hosts: Iterable[Host], *, egress: bool) -> Counter[str]:
    """Print one row per host, a block of TABLE_BLOCK rows at a time, every block with the
    column widths of the first (so that they line up as one table); the egress column when
    ``egress`` is set or a host of the first block has a verdict. Returns the hosts by maker."""
    from rich import box
    from rich.table import Table

    vendors: Counter[str] = Counter()
    columns = ["address", "open ports", "vendor", "brand", "model", "firmware", "confidence", "egress"]
    widths: list[int] = []
    block: list[list[str]] = []

    def flush(first: bool) -> None:
        nonlocal widths, columns
        if not block and not first:
            return
        if first:
            if not egress and not any(row[-1] for row in block):
                columns = columns[:-1]
            widths = [min(_WIDEST, max([len(name), *(len(row[i]) for row in block)])) for i, name in enumerate(columns)]
        table = Table(title=title if first else None, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                      show_header=first, pad_edge=False)
        for name, width in zip(columns, widths, strict=True):
            table.add_column(name, width=width, overflow="fold")
        for row in block:
            table.add_row(*row[: len(columns)])
        console.print(table)
        block.clear()

    printed = 0
    for host in hosts:
        vendors[host.identity.vendor if host.identity else "not identified"] += 1
        block.append(_host_row(host))
        if len(block) == TABLE_BLOCK:
            flush(printed == 0)
            printed += TABLE_BLOCK
    flush(printed == 0)
    return vendors


def print_findings(console: Any, findings: FindingSummary, db_path: str) -> None:
    """How many findings by severity, then the most severe, one line each."""
    if not findings.total:
        return
    console.print("findings: " + ", ".join(f"{n} {severity}" for severity, n in findings.counts.items() if n))
    shown = findings.most_severe()
    for finding in shown:
        console.print(f"  {finding.severity:<8} {finding.subject:<16} {finding.title}", markup=False, highlight=False)
    if findings.total > len(shown):
        console.print(f"  ... {findings.total - len(shown)} more: camaudit report --db {db_path} -o report.html",
                      markup=False, highlight=False)


def _print_summary(doc: dict[str, Any], hosts: Iterable[Host], findings: FindingSummary, db_path: str) -> None:
    from rich.console import Console

    # A pipe or a file gets full rows rather than a table squeezed into 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    site = f", site {doc['site']}" if doc.get("site") else ""
    vendors = print_hosts_table(console, f"scan {doc['scan_id']} ({doc['status']}{site})", hosts,
                                egress=bool(doc.get("egress")))
    answered = sum(vendors.values())
    if doc.get("sweep_only"):
        # A port inventory identifies nothing by design: its hosts are not "not identified".
        console.print(f"{doc['addresses_scanned']:,} addresses scanned, {answered} answered "
                      f"(sweep only: no identification was attempted)")
    else:
        console.print(
            f"{doc['addresses_scanned']:,} addresses scanned, {answered} answered"
            + (": " + ", ".join(f"{n} {v}" for v, n in vendors.most_common()) if answered else "")
        )
    if doc.get("egress"):
        for line in egress_lines(doc["egress"]):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    print_findings(console, findings, db_path)
    for note in doc["notes"]:
        console.print(f"note: {note}", style="yellow")
    if doc["status"] != "complete":
        console.print(f"the scan is {doc['status']}; what it found is kept in {db_path}", style="bold red")
    else:
        console.print(f"recorded in {db_path}")


@click.command()
@DB_OPTION
@JSON_OPTION
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@STALE_AFTER_OPTION
@SITE_OPTION
def scans(db_path: str, as_json: bool, limit: int, stale_after: float, site: str | None) -> int:
    """List past camera scans in the store (of one site with --site), newest first. Egress
    runs are not scans.

    A scan still marked running whose heartbeat is older than --stale-after was killed: it is
    marked interrupted, with a note saying so.
    """
    with open_store(db_path, create=False, stale_after=stale_after) as store:
        rows = store.scans(limit=limit, site=_site(site))
    if as_json:
        print_json({"scans": [_scan_json(r) for r in rows]})
        return 0
    from rich.console import Console
    from rich.table import Table

    terminal = sys.stdout.isatty()
    table = Table()
    for column in ("scan id", "site", "started", "status", "targets", "addresses", "hosts"):
        # Ids are what the next command needs: never cut, whatever the width.
        table.add_column(column, no_wrap=column in ("scan id", "started"), overflow="fold",
                         min_width=36 if column == "scan id" else None)
    for row in rows:
        targets = " ".join(row.targets)
        table.add_row(row.id, row.site, row.started_at[:19].replace("T", " "), row.status,
                      targets[:40] if terminal else targets, f"{row.addresses_scanned:,}", str(row.hosts))
    # A pipe or a file is read by scripts and grep: no terminal width applies there.
    (Console() if terminal else Console(width=max(200, 120 + max((len(" ".join(r.targets)) for r in rows), default=0)))).print(table)
    return 0


def _scan_json(row: Any) -> dict[str, Any]:
    return {
        "scan_id": row.id,
        "site": row.site,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "status": row.status,
        "targets": row.targets,
        "addresses_scanned": row.addresses_scanned,
        "hosts": row.hosts,
        "notes": row.notes,
        "camaudit_version": row.camaudit_version,
    }


@click.command()
@click.argument("ref")
@DB_OPTION
@JSON_OPTION
@STALE_AFTER_OPTION
@SITE_OPTION
def show(ref: str, db_path: str, as_json: bool, stale_after: float, site: str | None) -> int:
    """Show one scan (by id, id prefix or `latest`), or an address's history across scans
    (of one site with --site: the same address at two sites is two hosts)."""
    with open_store(db_path, create=False, stale_after=stale_after) as store:
        if _is_address(ref):
            from ..report.address_history import summarise_history

            history = store.address_history(ref, site=_site(site))
            summary = summarise_history(store, history)
            if as_json:
                print_json({"address": ref, "site": _site(site), "history": history, "summary": summary})
            else:
                _print_history(ref, history, summary)
            return 0
        from ..report.address_history import port_label
        from ..store.observations import each_host
        from ..store.scans import scan_settings

        row = store.scan(ref, site=_site(site))
        if as_json:
            print_json(_scan_json(row) | {"hosts": store.hosts_of_scan(row.id)})
            return 0
        typed = list(each_host(store, row.id))
        sweep_only = bool(scan_settings(store, row.id).get("sweep_only"))
    _print_summary({**_scan_json(row), "sweep_only": sweep_only}, typed, FindingSummary(), db_path)
    for host in typed:
        click.echo(f"\n{host.address}  ports {','.join(map(str, host.ports))}")
        for obs in host.observations:
            value = obs.value.replace("\r", "").replace("\n", " | ")
            click.echo(f"  {obs.kind:<22} {port_label(obs.kind, obs.port, obs.source):<10} {value[:100]}")
    return 0


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _one_line(text: Any, limit: int = 100) -> str:
    return str(text).replace("\r", "").replace("\n", " | ")[:limit]


def day(timestamp: str) -> str:
    """``2026-11-04 09:00`` from a stored timestamp."""
    return timestamp[:16].replace("T", " ")


def _print_history(address: str, history: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    """The address across scans, grouped: identity, evidence and verdicts, then the scans."""
    if not history:
        click.echo(f"no scan recorded anything for {address}")
        return
    click.echo(f"{address}: seen in {summary['scans']} scan(s), {day(history[-1]['started_at'])} to {day(history[0]['started_at'])}")
    click.echo("\nidentity")
    for group in summary["identities"]:
        ident = group["identity"]
        if ident["vendor"] is None:
            words = "not identified"
        else:
            words = " ".join(str(ident[f]) for f in ("vendor", "brand", "model") if ident[f])
            extra = [str(ident["device_type"])] if ident["device_type"] else []
            extra += [f"{f} {ident[f]}" for f in ("firmware", "serial") if ident[f]]
            if group["confidence"] is not None:
                extra.append(f"confidence {group['confidence']:.2f}")
            words += f" ({', '.join(extra)})" if extra else ""
        click.echo(f"  {words}")
        click.echo(f"    site {group['site']}, {len(group['scans'])} scan(s), {day(group['first_seen'])} to {day(group['last_seen'])}")
    click.echo("\negress verdict")
    shown = [v for v in summary["verdicts"] if v["verdict"] is not None]
    if not shown:
        click.echo("  none carried (the address was never identified by a camera scan)")
    for verdict in shown:
        source = f" ({verdict['source']})" if verdict["source"] else ""
        words = "no egress verdict recorded" if verdict["verdict"] == "NONE" else verdict["verdict"] + source
        click.echo(f"  {day(verdict['started_at'])}  scan {verdict['scan_id'][:8]}  {words}")
    click.echo("\nopen ports")
    click.echo("  " + (", ".join(f"{p['port']} ({p['scans']} of {summary['scans']})" for p in summary["ports"]) or "none"))
    click.echo("\nevidence")
    if not summary["evidence"]:
        click.echo("  none recorded")
    for item in summary["evidence"]:
        click.echo(f"  {item['kind']:<22} {item['port']:<10} {_one_line(item['value'])}  [{item['scans']} of {summary['scans']} scans]")
    click.echo("\nscans")
    for entry in history:
        host = entry["host"] or {}
        click.echo(f"  {day(entry['started_at'])}  scan {entry['scan_id']}  {entry['site']:<10} {entry['status']:<11} "
                   f"ports {','.join(map(str, host.get('ports', []))) or '-'}")
