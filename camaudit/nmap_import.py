"""Record an nmap run (``-sV`` or ``-sT`` XML) as a camaudit scan: ``camaudit import nmap``.

Teams that already run nmap get camaudit's attribution and reports without rescanning: every
host nmap saw with an open port (or a MAC) becomes a host of a new scan of the site, its open
ports become services, and what nmap recorded about them becomes observations (nmap's own
service match as ``nmap_service``, the Server header, titles, certificates and raw answers, as
:mod:`camaudit.fingerprint.nmap_xml` reads them). The scan is then identified and assessed as
any scan is (:func:`camaudit.audit.finalise_scan`), so ``report``, ``diff`` and ``show`` work on
it. camaudit sends no packet for this.

The file is untrusted input: defusedxml, a size limit, a cap on hosts, and a one-line
:class:`~camaudit.errors.InputError` for anything that is not usable nmap XML. Nothing is
written to the store before the file has been read whole.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CamauditError, InputError
from .fingerprint.nmap_xml import NmapHost, NmapRun, parse_run_file
from .model import DEFAULT_SITE, FindingSummary
from .scope import is_external, parse_target
from .store import Store
from .store import scans as stored_scans

#: More hosts than this in one file is refused (the scope's --max-hosts default, too).
MAX_IMPORT_HOSTS = 65_536
#: nmap options whose next word is an address that is not a target.
_OPTIONS_WITH_ADDRESS = frozenset({"--exclude", "-S", "-D", "--dns-servers", "-e", "--source-ip"})
#: A start time further ahead than this is not believed (a hostile file would stay "latest").
_FUTURE_SLACK = _dt.timedelta(days=1)


@dataclass(slots=True)
class ImportResult:
    scan_id: str
    site: str
    hosts: int
    services: int
    observations: int
    #: What the import's assessment found (counts and the most severe; the store has them all).
    findings: FindingSummary = field(default_factory=FindingSummary)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"scan_id": self.scan_id, "site": self.site, "status": "complete", "hosts": self.hosts,
                "services": self.services, "observations": self.observations,
                "findings": self.findings.total, "notes": self.notes}  # fmt: skip


def import_nmap(store: Store, path: str, *, site: str | None = None, policy_path: str | None = None,
                run: NmapRun | None = None) -> ImportResult:
    """Record the nmap XML file ``path`` as a complete scan of ``site``; identify and assess it.
    ``run`` is the file already read (:func:`parse_run_file`), to check it before a store opens.

    Raises :class:`InputError` (nothing recorded) for a file that cannot be used."""
    run = run if run is not None else parse_run_file(path)
    hosts = [h for h in run.hosts if h.open_ports() or any(o.kind == "mac" for o in h.observations)]
    if len(run.hosts) > MAX_IMPORT_HOSTS:
        raise InputError(f"{path} lists {len(run.hosts):,} hosts; camaudit imports at most {MAX_IMPORT_HOSTS:,} from one file")
    if not hosts:
        raise InputError(f"{path}: nmap found no host with an open port; nothing to import")
    if policy_path is not None:
        from .policy import load_policy

        load_policy(policy_path)  # a bad policy file is a usage error, found before anything is written
    site = site or DEFAULT_SITE
    name = Path(path).name
    digest = _digest(path)
    earlier = stored_scans.scan_with_config_hash(store, site, digest[:16])
    if earlier is not None and earlier.status == "complete":
        raise InputError(f"{name} was imported already, as scan {earlier.id[:8]} of site {site}; nothing recorded")
    notes = [_provenance(run, name)]
    started_at, finished_at, note = _times(run)
    if note:
        notes.append(note)
    external = sorted({h.address for h in hosts if is_external(h.address)})
    if external:
        notes.append(f"the nmap run lists {len(external)} public address(es) (first: {external[0]}); recorded as nmap saw them")
    settings = {"source": "nmap-xml", "file": name, "sha256": digest, "nmap_version": run.version,
                "nmap_args": run.args, "sweep_only": False}  # fmt: skip
    scan_id = stored_scans.start_scan(
        store, targets=_targets(run, hosts), config=settings, config_hash=digest[:16],
        addresses=max(run.hosts_total or 0, len(run.hosts)), site=site, started_at=started_at,
    )  # fmt: skip
    services = observations = 0
    try:
        for proto in ("tcp", "udp"):
            found = [(h.address, port) for h in hosts for p, port in h.open_ports() if p == proto]
            store.add_services(scan_id, found, proto=proto)
            services += len(found)
        evidence = [o for h in hosts for o in h.observations if o.kind != "open_port"]  # ports are services
        store.add_observations(scan_id, evidence)
        observations = len(evidence)
        stored_scans.finish_scan(store, scan_id, "complete", notes=notes, finished_at=finished_at)
    except BaseException as exc:
        # Half an import is not a scan to report from: mark it failed, say why, and re-raise.
        reason = str(exc) if isinstance(exc, CamauditError) else f"{type(exc).__name__}: {exc}"
        store.finish_scan(scan_id, "failed", notes=notes, error=f"the import stopped: {reason}")
        raise
    from .audit import finalise_scan

    findings = finalise_scan(store, scan_id, "complete", policy_path=policy_path, mark=False) or FindingSummary()
    return ImportResult(scan_id, site, len(hosts), services, observations, findings, notes)


def _digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InputError(f"cannot read nmap XML {path}: {exc.strerror or exc}") from exc
    return digest.hexdigest()


def _provenance(run: NmapRun, name: str) -> str:
    version = f" {run.version}" if run.version else ""
    command = f" ({run.args})" if run.args else ""
    return f"imported from nmap{version} XML {name}{command}; camaudit sent no packet for this scan"


def _times(run: NmapRun) -> tuple[str | None, str | None, str | None]:
    """The run's start and end as the store writes times, when the file gives believable ones."""
    now = _dt.datetime.now(_dt.UTC)

    def moment(epoch: int | None) -> _dt.datetime | None:
        if epoch is None:
            return None
        try:
            return _dt.datetime.fromtimestamp(epoch, _dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None

    start, end = moment(run.started), moment(run.finished)
    if start is None:
        return None, None, "the nmap file gives no start time: the scan is dated when it was imported"
    if start > now + _FUTURE_SLACK:
        return None, None, f"the nmap file's start time ({start.isoformat()}) is in the future: the scan is dated when it was imported"
    if end is None or end < start or end > now + _FUTURE_SLACK:
        end = start
    return (start.isoformat(timespec="microseconds"), end.isoformat(timespec="microseconds"), None)


def _targets(run: NmapRun, hosts: list[NmapHost]) -> list[str]:
    """The targets the nmap command named (addresses, networks, ranges), else the hosts found."""
    words = run.args.split()[1:]
    targets = []
    for index, word in enumerate(words):
        if word.startswith("-") or (index and words[index - 1] in _OPTIONS_WITH_ADDRESS):
            continue
        try:
            parse_target(word)
        except CamauditError:
            continue
        targets.append(word)
    if targets:
        return targets[:256]
    return [h.address for h in hosts][:256]
