"""Export one run (a scan, or an egress check) of an agent's store as a signed evidence bundle.

The rows are copied by the store (:func:`camaudit.store.bundles.export_run`) into a database of
the store's own schema; this module signs it with the agent's key (:mod:`.bundle`). The same run
exported twice gives the same bytes, so the centre sees one bundle id and merges it once.
"""

from __future__ import annotations

import hashlib
import re
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import __version__
from ..errors import UsageError
from ..store import Store
from ..store.bundles import export_run
from .bundle import build_bundle
from .keys import AgentKey


@dataclass(frozen=True)
class ExportedBundle:
    bundle: bytes
    bundle_id: str
    kind: str
    run_id: str
    site: str
    counts: dict[str, int]


def agent_id_for(key: AgentKey) -> str:
    """This agent's name in heartbeats and manifests: its host name and its key's fingerprint
    (two agents cloned from one image still differ by key). Only ``[A-Za-z0-9_-]``, so it is one
    key-value token."""
    host = re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-")[:40] or "agent"
    return f"{host}-{key.fingerprint.removeprefix('ed25519:')[:8]}"


def export_bundle(store: Store, key: AgentKey, *, scan_ref: str | None = None, egress_run_id: str | None = None,
                  site: str | None = None, job_id: str | None = None, agent_id: str | None = None) -> ExportedBundle:
    """Sign the run ``scan_ref`` (id, prefix or ``latest``) or ``egress_run_id`` of ``store``.
    With ``site`` (the agent's fleet file), a run of another site is refused."""
    if (scan_ref is None) == (egress_run_id is None):
        raise UsageError("name one run to export: --scan ID|latest or --egress-run ID")
    if scan_ref is not None:
        scan = store.scan(scan_ref, site=site if scan_ref == "latest" else None)
        run = export_run(store, scan_id=scan.id)
    else:
        run = export_run(store, egress_run_id=egress_run_id)
    if site is not None and run.site != site:
        raise UsageError(f"the {run.kind} {run.run_id} was recorded for site {run.site!r}, but this agent is "
                         f"site {site!r} (run it with --site {site})")
    bundle = build_bundle(run.database, key, kind=run.kind, site=run.site, segments=run.segments,
                          agent_id=agent_id or agent_id_for(key), agent_version=__version__, job_id=job_id,
                          started_at=_with_zone(run.started_at), finished_at=_with_zone(run.finished_at),
                          counts=run.counts)
    return ExportedBundle(bundle=bundle, bundle_id=hashlib.sha256(run.database).hexdigest(), kind=run.kind,
                          run_id=run.run_id, site=run.site, counts=run.counts)


def _with_zone(stamp: str) -> str:
    """Store times are UTC; a manifest time must say so."""
    try:
        parsed = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp  # build_bundle refuses it with the reason
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.isoformat()
