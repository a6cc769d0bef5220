"""`camaudit report`, `export`, `diff`, `register import|list`, `schedule`."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError
from ..policy import SEVERITIES
from .output import DB_OPTION, JSON_OPTION, SITE_OPTION, open_store, print_json

FAIL_ON = click.Choice([*SEVERITIES, "none"])
SCAN_OPTION = click.option("--scan", "scan_ref", default="latest", show_default=True, help="Scan id, id prefix, or latest.")
POLICY_OPTION = click.option(
    "--policy", "policy_path", type=click.Path(dir_okay=False), help="A findings policy (default: the shipped config/policy.yaml)."
)


def _policy(path: str | None) -> Any:
    """The policy named with --policy; None when none was named (an existing assessment is then
    shown as it was made, whatever the shipped policy says today)."""
    if path is None:
        return None
    from ..policy import load_policy

    return load_policy(path)


def _site(site: str | None) -> str | None:
    from ..config import site_name

    return site_name(site) if site is not None else None


def _expand_output(template: str, scan_id: str, now: _dt.datetime | None = None) -> str:
    """``{date}`` in an output name becomes the date and time of this run (UTC), so that a
    scheduled report's name says when it was made, and ``{scan}`` the scan's short id, which says
    what it shows."""
    moment = (now or _dt.datetime.now(_dt.UTC)).astimezone(_dt.UTC)
    return template.replace("{date}", moment.strftime("%Y%m%d-%H%M%S")).replace("{scan}", scan_id[:8])


def _format_age(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


@click.command()
@DB_OPTION
@SCAN_OPTION
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json", "csv", "pdf"]), help="Default: from the file name.")
@click.option("-o", "--output", "output", required=True, help="The report file ({date} and {scan} are filled in), or - for stdout.")
@click.option("--estate", is_flag=True, help="The estate report: every site's latest complete scan, one conclusion per site.")
@click.option("--lang", type=click.Choice(["en", "nl"]), default="en", show_default=True, help="Language of HTML and Markdown.")
@POLICY_OPTION
@click.option("--fail-on", type=FAIL_ON, default="none", show_default=True,
              help="Exit 1 when a finding is at or above this (by default the exit code ignores findings).")
@click.option("--require-complete", is_flag=True, help="Exit 3 when the scan did not complete (for scheduled runs).")
@click.option("--max-age", "max_age", metavar="DURATION",
              help="Exit 3, writing nothing, when the scan started longer ago than this (26h, 7d): a stale scan "
                   "is not reported as today's. With --estate: flag the sites whose latest scan is older, and "
                   "exit 3 after writing the report when there is one.")
@click.option("--scan-id-from", "scan_id_from", type=click.Path(dir_okay=False), metavar="FILE",
              help="Report the scan whose id `scan --scan-id-file FILE` wrote; exit 3, writing nothing, when the file "
                   "holds none (that scan failed before recording anything).")
@click.option("--reassess", is_flag=True, help="Assess the scan afresh first (a new assessment; earlier ones stay).")
@SITE_OPTION
@JSON_OPTION
def report(
    db_path: str, scan_ref: str, fmt: str | None, output: str, estate: bool, max_age: str | None, lang: str,
    policy_path: str | None, fail_on: str, require_complete: bool, scan_id_from: str | None, reassess: bool,
    site: str | None, as_json: bool,
) -> int:  # fmt: skip
    """Write the report of one scan, from the store alone: HTML (one self-contained file),
    Markdown, JSON or CSV (one row per finding). The report shows the scan's latest assessment
    (the first is made and recorded when there is none); reporting again never changes it.

    With --estate: every site of the store (a central store) in one report, HTML, Markdown,
    JSON or PDF: one conclusion per site, the estate inventory, the register across sites.

    Example:

        camaudit report --db audit.db -o audit.html --lang nl

        camaudit report --estate --db central.db -o estate.pdf --max-age 7d
    """
    from ..assess import Finding, count_by_severity, severity_at_least
    from ..report import format_for, render_bytes, write_atomically
    from ..report.data import build_report
    from ..schedule import parse_duration, read_scan_id_file, scan_age

    policy = _policy(policy_path)
    if output == "-" and not fmt:
        raise UsageError("writing to stdout (-o -) needs --format")
    if estate:
        single = [name for name, given in (("--scan", scan_ref != "latest"), ("--site", site is not None),
                                           ("--reassess", reassess), ("--require-complete", require_complete),
                                           ("--scan-id-from", scan_id_from is not None)) if given]
        if single:
            raise UsageError(f"{', '.join(single)} go(es) with one scan's report; --estate covers every site's "
                             "latest complete scan")
        return _estate_report(db_path, fmt, output, lang, policy, max_age, fail_on, as_json)
    max_age_s = parse_duration(max_age, "--max-age") if max_age is not None else None
    if scan_id_from is not None:
        if scan_ref != "latest":
            raise UsageError("name the scan with --scan or --scan-id-from, not both")
        recorded = read_scan_id_file(scan_id_from)
        if recorded is None:
            click.echo(f"camaudit: {scan_id_from} names no scan: the scan failed before recording anything; "
                       "no report written", err=True)
            return 3
        scan_ref = recorded
    with open_store(db_path, create=False) as store:
        fmt = format_for(output, fmt) if output != "-" else fmt
        assert fmt is not None
        chosen = store.scan(scan_ref, site=_site(site))
        if max_age_s is not None:
            age = scan_age(chosen.started_at)
            if age is None or age > max_age_s:
                when = chosen.started_at[:19].replace("T", " ")
                older = f"{_format_age(age)} old" if age is not None else "of unknown age"
                click.echo(f"camaudit: the scan {chosen.id[:8]} ({chosen.site}) started {when} UTC and is {older}, "
                           f"beyond --max-age {max_age}; no report written", err=True)
                return 3
        doc = build_report(store, chosen.id, policy=policy, lang=lang, reassess=reassess, site=_site(site))
    scan = doc["scan"]
    if output == "-":
        _report_to_stdout(doc, fmt)
        path = None
    else:
        path = write_atomically(_expand_output(output, scan["scan_id"]), render_bytes(doc, fmt))
    findings = [Finding(**f) for f in doc["findings"]]
    counts = count_by_severity(findings)
    failing = severity_at_least(findings, fail_on)
    incomplete = scan["status"] != "complete"
    if as_json and path is not None:
        print_json({"path": str(path), "scan_id": scan["scan_id"], "site": scan["site"], "scan_status": scan["status"],
                    "assessment_id": doc["assessment"]["assessment_id"],
                    "findings": counts, "fail_on": fail_on, "failing": failing})  # fmt: skip
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
    where = f"wrote {path}" if path else "report written"
    click.echo(f"{where}: scan {scan['scan_id'][:8]} ({scan['status']}), assessment "
               f"{doc['assessment']['assessment_id'][:8]}, {summary}", err=True)
    if require_complete and incomplete:
        click.echo(f"camaudit: the scan {scan['scan_id'][:8]} is {scan['status']}, not complete", err=True)
        return 3
    if failing:
        click.echo(f"camaudit: findings at or above {fail_on}", err=True)
        return 1
    return 0


def _to_stdout(data: bytes | str, *, binary_kind: str | None = None) -> None:
    """Write an export to stdout (``-o -``). A binary format is refused on a terminal, where it
    would only garble the screen."""
    if isinstance(data, bytes) and binary_kind is not None and sys.stdout.isatty():
        raise UsageError(f"{binary_kind} is binary: redirect stdout to a file (-o - > file) or name a file with -o")
    sys.stdout.flush()
    if isinstance(data, str):
        data = data.encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _report_to_stdout(doc: dict[str, Any], fmt: str) -> None:
    from ..report import render, render_bytes

    if fmt == "pdf":
        sys.stdout.flush()
        sys.stdout.buffer.write(render_bytes(doc, fmt))
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(render(doc, fmt))


def _estate_report(db_path: str, fmt: str | None, output: str, lang: str, policy: Any, max_age: str | None,
                   fail_on: str, as_json: bool) -> int:
    """`report --estate`: every site's latest complete scan in one document."""
    from ..assess import Finding, count_by_severity, severity_at_least
    from ..report import format_for, render_bytes, write_atomically
    from ..report.estate import build_estate, parse_duration

    seconds = parse_duration(max_age) if max_age is not None else None
    fmt = format_for(output, fmt) if output != "-" else fmt
    assert fmt is not None
    if fmt == "csv":
        raise UsageError("the estate report is written as html, md, json or pdf, not csv")
    with open_store(db_path, create=False) as store:
        doc = build_estate(store, policy=policy, lang=lang, max_age=seconds)
    path = None
    if output == "-":
        _report_to_stdout(doc, fmt)
    else:
        path = write_atomically(_expand_output(output, "estate"), render_bytes(doc, fmt))
    findings = [Finding(**f) for f in doc["findings"]]
    failing = severity_at_least(findings, fail_on)
    if as_json and path is not None:
        print_json({"path": str(path), "sites": [s["site"] for s in doc["sites"]], "flags": doc["flags"],
                    "findings": count_by_severity(findings), "fail_on": fail_on, "failing": failing})
    flagged = sorted({f["site"] for f in doc["flags"]})
    click.echo(f"{'wrote ' + str(path) if path else 'estate report written'}: {len(doc['sites'])} site(s)"
               + (f", flagged: {', '.join(flagged)}" if flagged else ""), err=True)
    # --max-age not met is exit 3 (the exit-code contract), also for the estate: the report is
    # still written, since it says which sites are stale, but a scheduled run must not pass
    # with a site that stopped reporting.
    stale = sorted({f["site"] for f in doc["flags"] if f.get("code") == "flag_stale"})
    if stale:
        click.echo(f"camaudit: the latest scan of {', '.join(stale)} started longer ago than --max-age {max_age}",
                   err=True)
        return 3
    if failing:
        click.echo(f"camaudit: findings at or above {fail_on}", err=True)
        return 1
    return 0


@click.command()
@click.argument("what", type=click.Choice(["inventory", "findings", "datasette-metadata"]))
@DB_OPTION
@SCAN_OPTION
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "jsonl", "xlsx"]), help="Default: from the file name.")
@click.option("-o", "--output", "output", required=True, help="The file to write, or - for stdout (then name --format).")
@POLICY_OPTION
@click.option("--fail-on", type=FAIL_ON, default="none", show_default=True,
              help="findings: exit 1 when one is at or above this (by default the exit code ignores findings).")
def export(what: str, db_path: str, scan_ref: str, fmt: str | None, output: str, policy_path: str | None,
           fail_on: str) -> int:
    """Export from the store: the device inventory (one row per device: csv, json or xlsx),
    the findings as OCSF events (json or jsonl: CVE findings as Vulnerability Findings, policy
    findings as Compliance Findings), or the Datasette metadata that describes every table and
    column (json). With -o - the export goes to stdout.

    Examples:

        camaudit export inventory --db audit.db -o cameras.xlsx

        camaudit export findings --db audit.db -o findings.json

        camaudit export inventory --db audit.db --format csv -o - | column -s, -t

        camaudit export datasette-metadata --db audit.db -o metadata.json && datasette audit.db -m metadata.json
    """
    from ..report import write_atomically

    stdout = output == "-"
    fmt = fmt or (None if stdout else Path(output).suffix.lower().lstrip(".") or None)
    if fail_on != "none" and what != "findings":
        raise UsageError("--fail-on applies to `export findings`")
    if what == "datasette-metadata":
        from ..report.datasette import metadata_for

        if fmt not in (None, "json"):
            raise UsageError("the Datasette metadata is JSON")
        open_store(db_path, create=False).close()  # metadata for a missing or foreign file helps nobody
        text = json.dumps(metadata_for(db_path), indent=2) + "\n"
        if stdout:
            _to_stdout(text)
        else:
            write_atomically(output, text)
            click.echo(f"wrote {output}; open with: datasette {db_path} -m {output}", err=True)
        return 0
    policy = _policy(policy_path)
    with open_store(db_path, create=False) as store:
        if what == "inventory":
            from ..report.inventory import FORMATS, inventory_rows, render_inventory, write_inventory

            if fmt not in FORMATS:
                raise UsageError(f"the inventory is written as {', '.join(FORMATS)}; name one with --format")
            rows = inventory_rows(store, scan_ref, policy)
            if stdout:
                _to_stdout(render_inventory(rows, fmt), binary_kind="XLSX" if fmt == "xlsx" else None)
                click.echo(f"inventory written: {len(rows)} rows", err=True)
            else:
                write_inventory(rows, fmt, output)
                click.echo(f"wrote {output}: {len(rows)} rows", err=True)
            return 0
        from ..assess import current_assessment
        from ..policy import load_policy
        from ..report.ocsf import render_ocsf

        if fmt not in ("json", "jsonl"):
            raise UsageError("findings are written as OCSF json or jsonl; name one with --format")
        scan = store.scan(scan_ref)
        _, findings = current_assessment(store, scan.id, policy)
    policy = policy or load_policy()
    text = render_ocsf(findings, policy, time=scan.finished_at or scan.started_at, lines=fmt == "jsonl")
    if stdout:
        _to_stdout(text)
        click.echo(f"findings written: {len(findings)}", err=True)
    else:
        write_atomically(output, text)
        click.echo(f"wrote {output}: {len(findings)} findings", err=True)
    from ..assess import severity_at_least

    if severity_at_least(findings, fail_on):
        click.echo(f"camaudit: findings at or above {fail_on}", err=True)
        return 1
    return 0


@click.command()
@click.argument("scan_a", required=False)
@click.argument("scan_b", required=False)
@DB_OPTION
@JSON_OPTION
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything changed (like git diff --exit-code).")
@SITE_OPTION
def diff(scan_a: str | None, scan_b: str | None, db_path: str, as_json: bool, exit_code: bool, site: str | None) -> int:
    """What changed between two scans: devices that appeared, vanished, moved address, or
    changed firmware, identity or verdict. With no scans named: the latest against the one
    before it (over the same targets when there is one); with one: that scan against the latest.

    Example:

        camaudit diff --db audit.db
    """
    from ..diff import diff_scans

    with open_store(db_path, create=False) as store:
        result = diff_scans(store, scan_a, scan_b if scan_b else None, site=_site(site))
    if as_json:
        print_json(result.to_json())
    else:
        click.echo(f"from scan {result.before.id} ({result.before.started_at[:19].replace('T', ' ')})")
        click.echo(f"to   scan {result.after.id} ({result.after.started_at[:19].replace('T', ' ')})")
        for change in result.changes:
            if change.kind in ("appeared", "vanished"):
                click.echo(f"{change.kind:<9} {change.address:<16} {change.label}")
            else:
                click.echo(f"{change.kind:<9} {change.address:<16} {change.label}: {_brief(change.before)} -> {_brief(change.after)}")
        counts = result.counts()
        click.echo(", ".join(f"{n} {k}" for k, n in counts.items()))
    return 1 if exit_code and result.changes else 0


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return "-" if value is None else str(value)


@click.command()
@click.argument("scan_ref", default="latest")
@DB_OPTION
@POLICY_OPTION
@SITE_OPTION
@JSON_OPTION
def assess(scan_ref: str, db_path: str, policy_path: str | None, site: str | None, as_json: bool) -> int:
    """Assess SCAN (id, id prefix or latest) afresh with today's policy, register and verdicts,
    recorded as a new assessment; earlier assessments and the reports made from them stay as
    they were. `report` then shows this one.

    Example:

        camaudit assess latest --db audit.db
    """
    from ..assess import create_assessment
    from ..model import count_by_severity

    with open_store(db_path, create=False) as store:
        scan = store.scan(scan_ref, site=_site(site))
        assessment, findings = create_assessment(store, scan.id, _policy(policy_path), reason="assess")
    counts = count_by_severity(findings)
    if as_json:
        print_json(assessment.to_json() | {"findings": counts})
    else:
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no findings"
        click.echo(f"assessment {assessment.id} of scan {scan.id[:8]} ({scan.site}): {summary}")
    return 0


@click.group()
def register() -> None:
    """The declared asset register: import it, list it."""


@register.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@DB_OPTION
@click.option("--merge", is_flag=True, help="Add or update assets by id instead of replacing the register.")
@SITE_OPTION
@JSON_OPTION
def register_import(file: str, db_path: str, merge: bool, site: str | None, as_json: bool) -> int:
    """Import the asset register of a site (--site, default 'default') from FILE (CSV or YAML;
    columns in config/register.example.csv). The file replaces the site's register unless --merge.

    Example:

        camaudit register import cameras.csv --db audit.db
    """
    from ..register import import_register

    with open_store(db_path) as store:
        result = import_register(store, file, merge=merge, site=_site(site) or "default")
    if as_json:
        print_json({"imported": result.imported, "replaced": result.replaced, "warnings": result.warnings})
    else:
        for warning in result.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"{result.imported} assets {'imported; the register was replaced' if result.replaced else 'merged'} in {db_path}")
    return 0


@register.command("list")
@DB_OPTION
@SITE_OPTION
@JSON_OPTION
def register_list(db_path: str, site: str | None, as_json: bool) -> int:
    """List a site's register as stored."""
    from ..register import load_register

    with open_store(db_path, create=False) as store:
        assets = load_register(store, _site(site) or "default")
    if as_json:
        print_json({"assets": [a.to_json() for a in assets]})
        return 0
    for a in assets:
        click.echo(f"{a.asset_id:<14} {a.address or '':<16} {a.mac or '':<18} {a.declared_maker or '':<12} {a.declared_model or '':<16} {a.location or ''}")
    click.echo(f"{len(assets)} assets")
    return 0


@click.command()
@click.argument("targets", nargs=-1, required=True)
@click.option("--every", required=True, help='daily, weekly (Mondays), or a cron expression such as "30 6 * * 1-5".')
@click.option("--at", "at", default="02:00", show_default=True, help="Time of day for daily and weekly (HH:MM).")
@click.option("--print", "kind", type=click.Choice(["systemd", "cron"]), required=True, help="What to print.")
@DB_OPTION
@click.option("--report-dir", type=click.Path(file_okay=False), help="Where reports accumulate (default: reports/ beside the database).")
@click.option("--format", "fmt", type=click.Choice(["html", "md", "json", "csv"]), default="html", show_default=True)
@click.option("--lang", type=click.Choice(["en", "nl"]), default="en", show_default=True)
@click.option("--fail-on", type=FAIL_ON, default="high", show_default=True, help="Findings at or above this fail the run (the alert).")
@POLICY_OPTION
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="A camaudit.toml for the scan.")
@click.option("--name", default="camaudit-audit", show_default=True, help="Unit name for systemd.")
@click.option("--fleet", "fleet_file", type=click.Path(dir_okay=False, exists=True),
              help="Many sites: the centre's central.toml; the units queue the scan for --site's agent instead.")
@click.option("--site", help="With --fleet: the site whose agent runs the scheduled scan.")
def schedule(
    targets: tuple[str, ...], every: str, at: str, kind: str, db_path: str, report_dir: str | None, fmt: str,
    lang: str, fail_on: str, policy_path: str | None, config_path: str | None, name: str, fleet_file: str | None,
    site: str | None,
) -> int:  # fmt: skip
    """Print the systemd units or the crontab line that scan TARGETS on a schedule, keep the
    history in the database and write a dated report; the run fails (the alert) when a finding
    is at or above --fail-on, or the scan did not complete.

    Examples:

        camaudit schedule 10.20.0.0/24 --every daily --at 03:15 --print systemd --db /var/lib/camaudit/audit.db

        camaudit schedule 10.20.0.0/24 --every "0 6 * * 1-5" --print cron

        camaudit schedule 10.1.0.0/24 --every daily --fleet /etc/camaudit/fleet/central.toml --site pool --print systemd
    """
    from ..schedule import crontab_line as cron_line
    from ..schedule import make_job, schedule_for, systemd_units

    if not name.replace("-", "").replace("_", "").isalnum():
        raise UsageError(f"--name {name!r}: use letters, digits, - and _")
    plan = schedule_for(every, at)
    if fleet_file is not None or site is not None:
        return _fleet_schedule(targets, every, plan, kind, fleet_file, site, name)
    job = make_job(targets, db_path, report_dir=report_dir, fail_on=fail_on, lang=lang, fmt=fmt,
                   policy=policy_path, config=config_path, name=name)  # fmt: skip
    if kind == "cron":
        click.echo(cron_line(job, plan), nl=False)
        return 0
    for filename, text in systemd_units(job, plan).items():
        click.echo(f"# ---- {filename}")
        click.echo(text)
    return 0


def _fleet_schedule(targets: tuple[str, ...], every: str, plan: Any, kind: str, fleet_file: str | None,
                    site: str | None, name: str) -> int:
    """`schedule --fleet`: units at the centre that queue the site's scan, once per slot."""
    from ..fleet.config import load_central
    from ..schedule import FleetJob, fleet_crontab_line, fleet_systemd_units

    if fleet_file is None or site is None:
        raise UsageError("--fleet and --site go together: the centre's central.toml and the site to scan")
    settings = load_central(Path(fleet_file))
    if site not in settings.sites:
        raise UsageError(f"site {site!r} is not in this fleet (sites: {', '.join(sorted(settings.sites))})")
    job = FleetJob(tuple(targets), Path(fleet_file).expanduser().resolve(), site, every, name)
    if kind == "cron":
        click.echo(fleet_crontab_line(job, plan), nl=False)
        return 0
    for filename, text in fleet_systemd_units(job, plan).items():
        click.echo(f"# ---- {filename}")
        click.echo(text)
    return 0
