"""`camaudit import nmap`: another tool's scan recorded as a camaudit scan."""

from __future__ import annotations

import click

from .output import DB_OPTION, JSON_OPTION, SITE_OPTION, open_store, print_json, resolve_site


@click.group("import")
def import_group() -> None:
    """Record another tool's scan as a camaudit scan, identified and assessed like any scan."""


@import_group.command("nmap")
@click.argument("file", type=click.Path(dir_okay=False))
@DB_OPTION
@SITE_OPTION
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False), help="A findings policy (default: the shipped one).")
@JSON_OPTION
def import_nmap(file: str, db_path: str, site: str | None, policy_path: str | None, as_json: bool) -> int:
    """Record the nmap XML FILE (nmap -sV or -sT with -oX) as a scan of the site: its hosts,
    their open ports and nmap's service matches, identified and assessed by camaudit, so that
    report, diff and show work on it. camaudit sends no packet; the scan is dated by the nmap run.

    Example:

        nmap -sV -p 80,443,554,8000,37777 10.20.0.0/24 -oX cams.xml && camaudit import nmap cams.xml --db audit.db
    """
    from ..fingerprint.nmap_xml import parse_run_file
    from ..nmap_import import import_nmap as record

    site_name = resolve_site(site)
    run = parse_run_file(file)  # a file that is not usable nmap XML is refused before a store is created
    with open_store(db_path) as store:
        result = record(store, file, site=site_name, policy_path=policy_path, run=run)
    if as_json:
        print_json(result.to_json())
        return 0
    summary = ", ".join(f"{n} {s}" for s, n in result.findings.counts.items() if n) or "no findings"
    click.echo(f"scan {result.scan_id} ({result.site}): {result.hosts} hosts, {result.services} open ports, "
               f"{result.observations} observations from {file}; {summary}")
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"next: camaudit report --db {db_path} --scan {result.scan_id[:8]} -o report.html", err=True)
    return 0
