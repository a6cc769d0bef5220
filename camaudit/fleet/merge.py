"""The centre's merge: verify a bundle, merge it in one transaction with its ledger row, then
identify and assess the merged scan exactly as a local scan is finalised.

The order is what makes the merge idempotent and safe to kill: the bundle's rows and its ledger
row commit together (nothing half-merged; a bundle in the ledger is never merged again), and only
after that commit does the caller acknowledge the message or report success. Identification and
assessment come after the commit; the ledger's ``finalised_at`` says they are done, and a merger
killed in between finishes them on its next start (:func:`finalise_merged`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..errors import CamauditError, StoreError
from ..store import Store
from ..store import bundles as stored_bundles
from .bundle import VerifiedBundle, verify_bundle, verify_bundle_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportResult:
    outcome: stored_bundles.MergeOutcome
    verified: VerifiedBundle
    finalised: list[str]  # runs identified and assessed by this call

    @property
    def already(self) -> bool:
        return self.outcome.already


def merge_verified(store: Store, verified: VerifiedBundle, *,
                   before_commit: Callable[[], None] | None = None) -> stored_bundles.MergeOutcome:
    """Merge a verified bundle (one transaction with its ledger row); no finalisation.
    ``before_commit`` runs inside the transaction, after the rows are written (tests)."""
    manifest = verified.manifest
    return stored_bundles.merge_bundle(
        store, verified.database, bundle_id=manifest.bundle_id, kind=manifest.kind, site=manifest.site,
        segments=manifest.segments, agent_id=manifest.agent_id, agent_version=manifest.agent_version,
        job_id=manifest.job_id, signer=verified.signer, size=verified.size, counts=dict(manifest.counts),
        before_commit=before_commit)


def finalise_merged(store: Store, *, policy_path: str | None = None) -> list[str]:
    """Identify and assess every merged scan not finalised yet, as a local scan is at its end
    (:func:`camaudit.audit.finalise_scan`: each host not identified yet, then an assessment when
    the scan has none). Returns the runs finalised. Idempotent: a run half-finalised by a killed
    merger is finished, never done twice."""
    from ..audit import finalise_scan
    from ..store.scans import scan_settings

    done = []
    for entry in stored_bundles.unfinalised(store):
        run_id = str(entry["run_id"])
        if entry["kind"] == "scan":
            scan = store.scan(run_id)
            if scan.status in ("complete", "interrupted") and not scan_settings(store, run_id).get("sweep_only"):
                finalise_scan(store, run_id, scan.status, policy_path=policy_path, mark=False)
                stored_bundles.link_verdict_devices(store, run_id)
        stored_bundles.mark_finalised(store, str(entry["bundle_id"]))
        done.append(run_id)
    return done


def import_bundle(store: Store, source: str | bytes, trusted_keys_by_site: Mapping[str, Sequence[Ed25519PublicKey]],
                  *, max_bytes: int, policy_path: str | None = None) -> ImportResult:
    """Verify (BundleRefused), merge (idempotent) and finalise one bundle, from a file path or
    bytes. A StoreError (a full disk) during the merge leaves the store as it was."""
    if isinstance(source, bytes):
        verified = verify_bundle_bytes(source, trusted_keys_by_site, max_bytes=max_bytes)
    else:
        verified = verify_bundle(source, trusted_keys_by_site, max_bytes=max_bytes)
    outcome = merge_verified(store, verified)
    finalised: list[str] = []
    try:
        finalised = finalise_merged(store, policy_path=policy_path)
    except CamauditError as exc:
        # The merge is committed and recorded; identification and assessment are finished by the
        # next import or central serve. Say so rather than fail the merge.
        error = StoreError if isinstance(exc, StoreError) else CamauditError
        raise error(f"bundle {verified.bundle_id[:16]} was merged, but identifying and assessing it "
                        f"failed ({exc}); the next `bundle import` or `central serve` finishes it") from exc
    return ImportResult(outcome=outcome, verified=verified, finalised=finalised)
