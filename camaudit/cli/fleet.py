"""`camaudit fleet init|trust|key|status` and `camaudit bundle verify`: many sites.

Exit codes (DESIGN.md section 7): 0 done; 2 usage, configuration or input error, a refused
bundle included (one line saying why); 3 the NATS server cannot be reached.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..errors import InputError, UsageError
from .output import JSON_OPTION, print_json

FLEET_FILE = click.Path(dir_okay=False, path_type=Path)


@click.group("fleet")
def fleet() -> None:
    """Run camaudit on many sites: one agent per camera segment, a NATS server at the centre.

    Start with `camaudit fleet init DIR --site NAME ... --server nats://HOST:PORT`.
    """


@fleet.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--dir", "dir_option", type=click.Path(file_okay=False, path_type=Path),
              help="Where to write the fleet's files (instead of the DIRECTORY argument).")
@click.option("--site", "sites", multiple=True, required=True,
              help="A site (camera segment) of the fleet: lower-case letters, digits, hyphens. Repeatable.")
@click.option("--server", default="nats://127.0.0.1:4222", show_default=True,
              help="The NATS server URL that agents and the centre connect to.")
@click.option("--listen", help="HOST:PORT the server listens on (default: the URL's address and port, or "
                               "every interface when the URL names a host).")
def init(directory: Path | None, dir_option: Path | None, sites: tuple[str, ...], server: str,
         listen: str | None) -> int:
    """Write a new fleet's files: DIR/nats-server.conf (JetStream on, one user per site and one for
    the centre, least-privilege permissions), DIR/central.toml and DIR/site-NAME.toml per site.

    Passwords are random, written only to those files (0600), never printed. Copy each
    site-NAME.toml to that site's agent only; nats-server.conf stays on the server.

    Example:

        camaudit fleet init /etc/camaudit/fleet --site pool --site works-yard --server nats://central.example.org:4222
    """
    from ..fleet.config import init_fleet

    if directory is not None and dir_option is not None and directory != dir_option:
        raise click.UsageError("give the fleet directory once: DIRECTORY or --dir")
    target = directory or dir_option
    if target is None:
        raise click.UsageError("where should the fleet's files go? Give DIRECTORY or --dir")
    written = init_fleet(target, sites, server=server, listen=listen)
    for path in written:
        click.echo(str(path))
    click.echo(f"fleet of {len(sites)} site(s) written; start the server with: nats-server -c {written[0]}",
               err=True)
    return 0


@fleet.command("trust")
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--site", required=True, help="The site whose bundles this key may sign.")
@click.argument("keyfile", type=click.Path(dir_okay=False, allow_dash=True))
def trust(directory: Path, site: str, keyfile: str) -> int:
    """Trust an agent's public key (the line `camaudit fleet key` printed on the agent) for one
    site's bundles. DIRECTORY is the fleet directory or its central.toml; KEYFILE a file holding
    the key line, or '-' for stdin.

    Example:

        camaudit fleet trust /etc/camaudit/fleet --site pool pool-agent.pub
    """
    from ..fleet.config import trust_key

    text = sys.stdin.read(4096) if keyfile == "-" else _read_small_text(keyfile, "key file")
    name, added = trust_key(directory, site, text)
    click.echo(f"{name} {'is now trusted' if added else 'was already trusted'} for site {site}")
    return 0


def _read_small_text(path: str, what: str, limit: int = 4096) -> str:
    """Read a short text file; a pipe, device or directory is refused rather than waited on."""
    import os
    import stat

    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise InputError(f"the {what} {path} is not a regular file")
        data = os.read(descriptor, limit)
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror}") from exc
    finally:
        os.close(descriptor)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"the {what} {path} is not text") from None


@fleet.command("key")
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE, help="This agent's site-NAME.toml.")
@JSON_OPTION
def key(fleet_file: Path, as_json: bool) -> int:
    """Print this agent's public key, making its signing key first if it has none (run it on the
    agent, never at the centre: a key is made where it is used and never copied). Carry the line
    to the centre and trust it there with `camaudit fleet trust`.
    """
    from ..fleet.config import load_site
    from ..fleet.keys import load_or_create_key

    settings = load_site(fleet_file)
    agent_key = load_or_create_key(settings.key_file)
    if as_json:
        print_json({"site": settings.site, "public_key": agent_key.public_text, "fingerprint": agent_key.fingerprint,
                    "key_file": str(agent_key.path), "created": agent_key.created})
        return 0
    click.echo(agent_key.public_text)
    note = "made a new signing key" if agent_key.created else "signing key"
    click.echo(f"{note} {agent_key.fingerprint} at {agent_key.path}; at the centre run: "
               f"camaudit fleet trust DIR --site {settings.site} KEYFILE", err=True)
    return 0


@fleet.command("status")
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE, help="The centre's central.toml.")
@JSON_OPTION
def status(fleet_file: Path, as_json: bool) -> int:
    """The agents of each site as the NATS server sees them: last seen (server time), version,
    clock offset, and the jobs waiting for the site.
    """
    from ..fleet.config import load_central

    settings = load_central(fleet_file)
    rows = asyncio.run(_status(settings))
    if as_json:
        print_json({"sites": rows})
        return 0
    for row in rows:
        if not row["agents"]:
            click.echo(f"{row['site']:<16} no agent has reported   {row['pending_jobs']} job(s) waiting")
        for agent in row["agents"]:
            flag = " STALE" if agent["stale"] else ""
            click.echo(f"{row['site']:<16} {agent['agent_id']:<28} v{agent['version']:<10} last seen "
                       f"{agent['last_seen']} ({agent['age_seconds']:.0f} s ago){flag}, clock offset "
                       f"{agent['clock_offset']:+.1f} s, {row['pending_jobs']} job(s) waiting")
    return 0


async def _status(settings: Any) -> list[dict[str, Any]]:
    import nats.js.errors

    from ..fleet import subjects
    from ..fleet.nats import connect, read_heartbeats

    client = await connect(settings, name="camaudit fleet status")
    try:
        js = client.jetstream(timeout=settings.limits.request_timeout)
        try:
            beats = await read_heartbeats(js)
        except nats.js.errors.BucketNotFoundError:
            beats = []  # no centre has provisioned the fleet yet: no agent can have reported
        now = datetime.now(UTC)
        rows = []
        for site in sorted(settings.sites):
            try:
                info = await js.consumer_info(subjects.JOBS_STREAM, subjects.site_consumer(site))
                pending = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            except nats.js.errors.NotFoundError:
                pending = 0
            agents = []
            for beat in (b for b in beats if b.site == site):
                age = (now - beat.last_seen).total_seconds()
                agents.append({"agent_id": beat.agent_id, "version": beat.version,
                               "last_seen": beat.last_seen.isoformat(timespec="seconds"), "age_seconds": age,
                               "stale": age > settings.limits.heartbeat_stale_after,
                               "clock_offset": round(beat.clock_offset, 3)})
            rows.append({"site": site, "pending_jobs": pending, "agents": agents})
        unknown = sorted({b.site for b in beats} - set(settings.sites))
        for site in unknown:  # a heartbeat under a site the centre's file no longer lists
            rows.append({"site": site, "pending_jobs": 0, "unknown_site": True, "agents": []})
        return rows
    finally:
        await client.close()


@click.group("bundle")
def bundle() -> None:
    """Evidence bundles: one signed file per run, carried by the fleet or by hand."""


@bundle.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE,
              help="The centre's central.toml (the keys it trusts per site).")
@JSON_OPTION
def verify(file: Path, fleet_file: Path, as_json: bool) -> int:
    """Check a bundle without merging it: its format, that it is signed by a key the centre trusts
    for its site, and that nothing in it was altered. Exit 0 when valid, 2 with the reason.
    """
    from ..errors import BundleRefused
    from ..fleet.bundle import verify_bundle
    from ..fleet.config import load_central

    settings = load_central(fleet_file)
    try:
        verified = verify_bundle(file, settings.sites, max_bytes=settings.limits.max_bundle_bytes)
    except BundleRefused as refused:
        if as_json:
            print_json({"valid": False, "file": str(file), "code": refused.code, "reason": str(refused)})
            click.echo(f"camaudit: error: bundle refused: {refused}", err=True)
            return 2
        raise InputError(f"bundle refused: {refused}") from None
    manifest = verified.manifest
    if as_json:
        print_json({"valid": True, "file": str(file), "signer": verified.signer, "size": verified.size,
                    **manifest.as_dict()})
        return 0
    click.echo(f"valid bundle from site {manifest.site}, agent {manifest.agent_id} (camaudit "
               f"{manifest.agent_version}, key {verified.signer}): {manifest.kind} "
               f"{manifest.started_at} to {manifest.finished_at}, job {manifest.job_id or 'none'}, "
               f"bundle {manifest.bundle_id[:16]}")
    return 0



@bundle.command("export")
@click.option("--db", "db_path", default="camaudit.db", show_default=True, type=click.Path(dir_okay=False),
              help="The agent's evidence store.")
@click.option("--scan", "scan_ref", help="The scan to export: id, id prefix, or latest.")
@click.option("--egress-run", "egress_run_id", help="An egress check to export instead of a scan (its run id).")
@click.option("--fleet", "fleet_file", type=FLEET_FILE,
              help="This agent's site-NAME.toml: its signing key, and the site the run must belong to.")
@click.option("--key", "key_file", type=click.Path(dir_okay=False, path_type=Path),
              help="The agent's signing key file (instead of --fleet).")
@click.option("--job", "job_id", help="The fleet job this run answered, if any.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The bundle file to write (never overwritten).")
@JSON_OPTION
def export_command(db_path: str, scan_ref: str | None, egress_run_id: str | None, fleet_file: Path | None,
                   key_file: Path | None, job_id: str | None, output: Path, as_json: bool) -> int:
    """Write one run of an agent's store (a scan, or an egress check with --egress-run) as a
    signed evidence bundle (signed with the key of --fleet or --key; without either, of the one
    site-NAME.toml or the agent-ed25519.key beside the database or in the current folder), to carry to the centre by hand when the site has no path to it:
    `camaudit bundle import FILE` there verifies and merges it.

    Example:

        camaudit bundle export --db agent.db --scan latest --fleet site-pool.toml -o pool.bundle
    """
    from ..fleet.bundle import write_bundle
    from ..fleet.export import export_bundle
    from ..fleet.keys import load_key, load_or_create_key
    from ..store import open_store

    if fleet_file is not None and key_file is not None:
        raise UsageError("sign with this agent's key: give --fleet site-NAME.toml or --key FILE, not both")
    if fleet_file is None and key_file is None:
        fleet_file, key_file = _find_agent_identity(Path(db_path))
    if scan_ref is None and egress_run_id is None:
        raise UsageError("name the run to export: --scan ID|latest or --egress-run ID")
    if scan_ref is not None and egress_run_id is not None:
        raise UsageError("export one run: --scan or --egress-run, not both")
    site = None
    if fleet_file is not None:
        from ..fleet.config import load_site

        settings = load_site(fleet_file)
        site = settings.site
        agent_key = load_or_create_key(settings.key_file)
    else:
        assert key_file is not None
        agent_key = load_key(key_file)
    with open_store(db_path, create=False) as store:
        exported = export_bundle(store, agent_key, scan_ref=scan_ref, egress_run_id=egress_run_id, site=site,
                                 job_id=job_id)
    write_bundle(output, exported.bundle)
    if as_json:
        print_json({"file": str(output), "bundle_id": exported.bundle_id, "kind": exported.kind,
                    "run_id": exported.run_id, "site": exported.site, "key": agent_key.fingerprint,
                    "counts": exported.counts})
        return 0
    rows = sum(exported.counts.values())
    click.echo(f"bundle {exported.bundle_id[:16]} written to {output}: {exported.kind} {exported.run_id} of site "
               f"{exported.site}, {rows} rows, signed by {agent_key.fingerprint}")
    return 0


def _find_agent_identity(db_path: Path) -> tuple[Path | None, Path | None]:
    """Without --fleet or --key: the one site-NAME.toml, else the agent key file, beside the
    database or in the current folder (where `fleet init` and `fleet key` put them)."""
    from ..fleet.config import DEFAULT_KEY_FILE

    for folder in dict.fromkeys([db_path.absolute().parent, Path.cwd()]):
        sites = sorted(folder.glob("site-*.toml"))
        if len(sites) == 1:
            return sites[0], None
        if (folder / DEFAULT_KEY_FILE).is_file():
            return None, folder / DEFAULT_KEY_FILE
    raise UsageError("sign with this agent's key: give --fleet site-NAME.toml or --key FILE")


@bundle.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE,
              help="The centre's central.toml (the keys it trusts per site).")
@click.option("--db", "db_path", default="camaudit.db", show_default=True, type=click.Path(dir_okay=False),
              help="The central evidence store.")
@click.option("--policy", "policy_path", type=click.Path(dir_okay=False),
              help="The findings policy the merged scan is assessed with (default: the shipped one).")
@JSON_OPTION
def import_command(file: Path, fleet_file: Path, db_path: str, policy_path: str | None, as_json: bool) -> int:
    """Verify a bundle and merge it into the central store, in one transaction, recorded in its
    ledger; the merged scan is then identified and assessed here, as a local scan is. A bundle
    the store has already is "already merged" (exit 0, nothing changed); a refused one exits 2
    with the reason.

    Example:

        camaudit bundle import pool.bundle --fleet /etc/camaudit/fleet/central.toml --db central.db
    """
    from ..errors import BundleRefused
    from ..fleet.config import load_central
    from ..fleet.merge import import_bundle
    from ..store import open_store

    settings = load_central(fleet_file)
    try:
        with open_store(db_path) as store:
            result = import_bundle(store, str(file), settings.sites, max_bytes=settings.limits.max_bundle_bytes,
                                   policy_path=policy_path)
    except BundleRefused as refused:
        if as_json:
            print_json({"merged": False, "file": str(file), "code": refused.code, "reason": str(refused)})
            click.echo(f"camaudit: error: bundle refused: {refused}", err=True)
            return 2
        raise InputError(f"bundle refused: {refused}") from None
    outcome = result.outcome
    if as_json:
        print_json({"merged": True, "already": outcome.already, "file": str(file), "bundle_id": outcome.bundle_id,
                    "kind": outcome.kind, "run_id": outcome.run_id, "site": outcome.site, "counts": outcome.counts,
                    "merged_at": outcome.merged_at, "note": outcome.note or None})
        return 0
    what = f"{outcome.kind} {outcome.run_id} of site {outcome.site}"
    if outcome.already:
        note = f" ({outcome.note})" if outcome.note else ""
        click.echo(f"already merged: bundle {outcome.bundle_id[:16]}, {what}{note}; nothing changed")
    else:
        click.echo(f"merged bundle {outcome.bundle_id[:16]}: {what}, {sum(outcome.counts.values())} rows")
    return 0


def _serve(make: Any) -> int:
    """Run a long-lived fleet loop until SIGINT or SIGTERM; a clean stop is exit 0."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await make(stop).run()

    asyncio.run(main())
    return 0


def _say(role: str) -> Any:
    def say(line: str) -> None:
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        click.echo(f"camaudit {role}: {stamp} {line}", err=True)

    return say


@click.group("agent")
def agent() -> None:
    """A site's agent: runs the jobs the centre queues for its site and sends their bundles."""


@agent.command("run")
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE, help="This agent's site-NAME.toml.")
@click.option("--db", "db_path", default="camaudit.db", show_default=True, type=click.Path(dir_okay=False),
              help="The agent's own evidence store (also its outbox of bundles not yet merged).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="This agent's scan configuration (TOML); a job sets only its targets and a few options.")
def agent_run(fleet_file: Path, db_path: str, config_path: str | None) -> int:
    """Connect out to the fleet's NATS server and run this site's jobs until SIGINT or SIGTERM.
    While the server is unreachable the agent keeps its bundles and retries with backoff, saying
    so on stderr; they are sent when the server returns.

    Example:

        camaudit agent run --fleet /etc/camaudit/site-pool.toml --db /var/lib/camaudit/agent.db
    """
    from ..fleet.agent import Agent
    from ..fleet.config import load_site

    settings = load_site(fleet_file)
    return _serve(lambda stop: Agent(settings, db_path, config_path=config_path, stop=stop, say=_say("agent")))


@click.group("central")
def central() -> None:
    """The centre: merges the sites' bundles into the central store."""


@central.command("serve")
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE, help="The centre's central.toml.")
@click.option("--db", "db_path", default="camaudit.db", show_default=True, type=click.Path(dir_okay=False),
              help="The central evidence store.")
@click.option("--policy", "policy_path", type=click.Path(exists=True, dir_okay=False),
              help="The findings policy merged scans are assessed with (default: the shipped one).")
def central_serve(fleet_file: Path, db_path: str, policy_path: str | None) -> int:
    """Provision the fleet on the NATS server, then verify and merge every bundle the sites send,
    until SIGINT or SIGTERM. Each bundle is merged once, in one transaction, and acknowledged
    only after; a refused bundle is reported on stderr with the reason.

    Example:

        camaudit central serve --fleet /etc/camaudit/fleet/central.toml --db central.db
    """
    from ..fleet.central import Central
    from ..fleet.config import load_central

    settings = load_central(fleet_file)
    return _serve(lambda stop: Central(settings, db_path, policy_path=policy_path, stop=stop, say=_say("central")))


@fleet.command("scan")
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE, help="The centre's central.toml.")
@click.option("--site", required=True, help="The site whose agent runs the scan.")
@click.argument("targets", nargs=-1, required=True)
@click.option("--exclude", multiple=True, help="Addresses or networks to leave out. Repeatable.")
@click.option("--ports", help="TCP ports to sweep (e.g. 80,443,554,8000-8010).")
@click.option("--no-discovery", is_flag=True, help="Skip discovery (WS-Discovery, SADP, DHIP, ARP).")
@click.option("--sweep-only", is_flag=True, help="Only find open ports; no probing or identification.")
@click.option("--schedule", help="The schedule firing this job (with --slot): a schedule fired twice for one slot "
                                 "queues the job once.")
@click.option("--slot", help="The schedule's slot this firing is for, e.g. 2026-12-04 or 2026-W49.")
@click.option("--every", help="With --schedule instead of --slot: the schedule's period (daily, weekly or a cron "
                              "expression); the slot is the one the current time falls in.")
@click.option("--wait", is_flag=True, help="Wait until the scan's bundle is merged into the central store.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Seconds --wait waits before saying no agent finished the job (exit 3).")
@JSON_OPTION
def scan_command(fleet_file: Path, site: str, targets: tuple[str, ...], exclude: tuple[str, ...], ports: str | None,
                 no_discovery: bool, sweep_only: bool, schedule: str | None, slot: str | None, every: str | None,
                 wait: bool, timeout: float, as_json: bool) -> int:
    """Queue a scan of TARGETS for SITE's agent. With --wait, wait until its bundle is merged and
    print the scan id; after --timeout say whether any agent picked the job up (exit 3).

    From a timer at the centre, name the schedule and its slot: the job's message id is then
    SITE/SCHEDULE/SLOT, and the server queues it once however often that slot fires.

    Example:

        camaudit fleet scan --fleet central.toml --site pool 10.1.0.0/24 --wait --json
        camaudit fleet scan --fleet central.toml --site pool 10.1.0.0/24 --schedule nightly --slot 2026-12-04
    """
    from ..config import parse_ports
    from ..fleet.config import load_central

    settings = load_central(fleet_file)
    if site not in settings.sites:
        raise InputError(f"site {site!r} is not in this fleet (sites: {', '.join(sorted(settings.sites))})")
    arguments: dict[str, Any] = {"targets": list(targets)}
    if exclude:
        arguments["exclude"] = list(exclude)
    if ports:
        arguments["ports"] = list(parse_ports(ports))
    if no_discovery:
        arguments["discovery_enabled"] = False
    if sweep_only:
        arguments["sweep_only"] = True
    if every is not None:
        from ..schedule import current_slot

        if slot is not None or schedule is None:
            raise UsageError("--every goes with --schedule, instead of --slot")
        slot = current_slot(every)
    message_id = _schedule_message_id(site, schedule, slot)
    outcome = asyncio.run(_queue_job(settings, "scan", site, arguments, wait=wait, timeout=timeout,
                                     message_id=message_id))
    if as_json:
        print_json(outcome)
    elif outcome.get("duplicate"):
        click.echo(f"schedule {schedule} slot {slot} of site {site} was queued already; nothing queued")
    elif outcome.get("merged"):
        click.echo(f"job {outcome['job_id']}: scan {outcome['scan_id']} of site {site} merged")
    else:
        click.echo(f"job {outcome['job_id']} queued for site {site}")
    return 0


def _schedule_message_id(site: str, schedule: str | None, slot: str | None) -> str | None:
    import re

    from ..fleet.nats import job_message_id

    if schedule is None and slot is None:
        return None
    if schedule is None or slot is None:
        raise UsageError("--schedule and --slot go together")
    for name, value in (("--schedule", schedule), ("--slot", slot)):
        if not re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", value):
            raise UsageError(f"{name} {value!r}: use 1-64 letters, digits, '.', '_', ':' or '-'")
    return job_message_id(site, schedule, slot)


@fleet.command("egress")
@click.option("--fleet", "fleet_file", required=True, type=FLEET_FILE, help="The centre's central.toml.")
@click.option("--site", required=True, help="The site whose agent runs the egress check.")
@click.option("--listener", "listeners", multiple=True, required=True,
              help="Address of the host running `camaudit egress listen` (repeatable).")
@click.option("--tcp-ports", help="TCP ports to probe (default: common and vendor-cloud ports).")
@click.option("--udp-ports", help="UDP ports to probe.")
@click.option("--dns-zone", help="A DNS zone delegated to the listener.")
@click.option("--resolver", "resolvers", multiple=True, help="Resolver to test instead of the agent's own.")
@click.option("--segment", help="Name of the segment (default: the agent's network).")
@click.option("--probe-timeout", type=float, help="Seconds each probe may wait.")
@click.option("--max-hops", type=click.IntRange(0, 30), help="TTL-stepped probes (0: none).")
@click.option("--ra-wait", type=click.FloatRange(0, 30), help="Seconds to wait for IPv6 router advertisements.")
@click.option("--no-upnp", is_flag=True, help="Do not search for a UPnP IGD.")
@click.option("--no-natpmp", is_flag=True, help="Do not ask the gateway for NAT-PMP/PCP.")
@click.option("--no-proxy-discovery", is_flag=True, help="Do not look for a WPAD proxy.")
@click.option("--skip", "skip", multiple=True, help="A path not to probe (icmp, ntp, udp/500, ...).")
@click.option("--wait", is_flag=True, help="Wait until the check's bundle is merged into the central store.")
@click.option("--timeout", type=click.FloatRange(min=1), default=3600.0, show_default=True,
              help="Seconds --wait waits before saying no agent finished the job (exit 3).")
@JSON_OPTION
def egress_command(fleet_file: Path, site: str, listeners: tuple[str, ...], tcp_ports: str | None,
                   udp_ports: str | None, dns_zone: str | None, resolvers: tuple[str, ...], segment: str | None,
                   probe_timeout: float | None, max_hops: int | None, ra_wait: float | None, no_upnp: bool,
                   no_natpmp: bool, no_proxy_discovery: bool, skip: tuple[str, ...], wait: bool, timeout: float,
                   as_json: bool) -> int:
    """Queue an egress check for SITE's agent (it runs `egress check` from inside the segment).
    With --wait, wait until its bundle is merged and print the egress run id.

    Example:

        camaudit fleet egress --fleet central.toml --site pool --listener 203.0.113.7 --wait --json
    """
    from ..egress.check import parse_port_list
    from ..fleet.config import load_central

    settings = load_central(fleet_file)
    if site not in settings.sites:
        raise InputError(f"site {site!r} is not in this fleet (sites: {', '.join(sorted(settings.sites))})")
    arguments: dict[str, Any] = {"listeners": list(listeners)}
    optional: dict[str, Any] = {
        "tcp_ports": parse_port_list(tcp_ports, "--tcp-ports") if tcp_ports else None,
        "udp_ports": parse_port_list(udp_ports, "--udp-ports") if udp_ports else None,
        "dns_zone": dns_zone, "resolvers": list(resolvers) or None, "segment": segment, "timeout": probe_timeout,
        "max_hops": max_hops, "ra_wait": ra_wait, "upnp": False if no_upnp else None,
        "natpmp": False if no_natpmp else None, "discover_proxy": False if no_proxy_discovery else None,
        "skip": list(skip) or None}
    arguments.update({k: v for k, v in optional.items() if v is not None})
    outcome = asyncio.run(_queue_job(settings, "egress", site, arguments, wait=wait, timeout=timeout))
    if as_json:
        print_json(outcome)
    elif outcome.get("merged"):
        click.echo(f"job {outcome['job_id']}: egress run {outcome['egress_run_id']} of site {site} merged")
    else:
        click.echo(f"job {outcome['job_id']} queued for site {site}")
    return 0


async def _queue_job(settings: Any, kind: str, site: str, arguments: dict[str, Any], *, wait: bool,
                     timeout: float, message_id: str | None = None) -> dict[str, Any]:
    import time

    import nats.js.errors

    from ..errors import FleetUnavailable
    from ..fleet import subjects
    from ..fleet.nats import Job, connect, provision, publish_job, read_merged

    client = await connect(settings, name=f"camaudit fleet {kind}")
    try:
        js = client.jetstream(timeout=settings.limits.request_timeout)
        await provision(js, sorted(settings.sites), settings.limits)
        job = Job(kind=kind, site=site, arguments=arguments)
        published = await publish_job(js, job, message_id=message_id)
        if published.duplicate:
            # That schedule's slot fired before: its job is queued (or done) already.
            return {"job_id": None, "site": site, "queued": False, "duplicate": True, "merged": False}
        if not wait:
            return {"job_id": job.job_id, "site": site, "queued": True, "merged": False}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = await read_merged(js, job.job_id)
            if record is not None:
                run = {"scan_id": record.get("scan_id")} if kind == "scan" else {
                    "egress_run_id": record.get("egress_run_id")}
                return {"job_id": job.job_id, **run, "site": site, "merged": True}
            await asyncio.sleep(0.5)
        try:
            info = await js.consumer_info(subjects.JOBS_STREAM, subjects.site_consumer(site))
            waiting = int(info.num_pending or 0)
        except nats.js.errors.NotFoundError:
            waiting = 1
        if waiting:
            raise FleetUnavailable(f"no live agent of site {site} picked up job {job.job_id} within {timeout:g} s; "
                                   "it stays queued (camaudit fleet status shows the agents)")
        raise FleetUnavailable(f"job {job.job_id} was picked up by site {site}'s agent but its bundle was not merged "
                               f"within {timeout:g} s (is camaudit central serve running?)")
    finally:
        await client.close()
