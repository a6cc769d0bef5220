"""Evidence bundles: one immutable, signed file per run (a scan or an egress check).

A bundle carries the run's rows as an SQLite file (made elsewhere, by the store) plus a manifest,
signed with the agent's Ed25519 key. At the centre a bundle is untrusted input: it may come from
a compromised site, over a USB stick, or be damaged. So the container is the simplest one that can
be checked exactly, a length-prefixed binary file with no compression (no bomb), no member names
(no path traversal) and nothing optional:

    offset  size  field
    0       16    magic  b"CAMAUDIT-BUNDLE\\n"
    16      4     M, manifest length, big-endian, 1..65536
    20      M     manifest: canonical JSON (UTF-8, sorted keys, no spaces, ASCII only)
    20+M    2     S, signature length, big-endian: 64 (0 = unsigned, always refused)
    22+M    S     Ed25519 signature of SIGNING_CONTEXT + manifest
    22+M+S  8     D, database length, big-endian, 1..max_bundle_bytes
    30+M+S  D     the SQLite database file
    end           nothing after it

The manifest (schema ``camaudit.bundle/1``) holds ``bundle_id`` (SHA-256 of the database bytes,
hex), ``kind`` (scan|egress), ``site``, ``segments``, ``agent_id``, ``agent_version``, ``job_id``
(null for a run started by hand), ``started_at``, ``finished_at``, ``counts`` (rows per table) and
``key`` (the signing key's fingerprint). The signature covers the manifest, and the manifest the
database through ``bundle_id``: a one-byte change anywhere is refused.

:func:`verify_bundle` returns a :class:`VerifiedBundle` or raises :class:`BundleRefused` whose
message is the one-line reason and whose ``code`` names it for scripts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import stat
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..config import FleetConfig
from ..errors import BundleRefused, OutputError
from .keys import AgentKey, fingerprint, verify_signature
from .subjects import SITE_NAME

SCHEMA = "camaudit.bundle/1"
MAGIC = b"CAMAUDIT-BUNDLE\n"
#: Signed before the manifest, so that a bundle signature can never be replayed as the
#: signature of anything else the agent's key might sign later (and vice versa).
SIGNING_CONTEXT = b"camaudit.bundle/1 manifest\x00"
SQLITE_MAGIC = b"SQLite format 3\x00"
MAX_MANIFEST_BYTES = 65536
SIGNATURE_BYTES = 64
KINDS = ("scan", "egress")
DEFAULT_MAX_BUNDLE_BYTES = FleetConfig().max_bundle_bytes

_HEADER = len(MAGIC)
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FINGERPRINT = re.compile(r"^ed25519:[0-9a-f]{16}$")
_FIELDS = frozenset({"schema", "bundle_id", "kind", "site", "segments", "agent_id", "agent_version",
                     "job_id", "started_at", "finished_at", "counts", "key"})


@dataclass(frozen=True)
class BundleManifest:
    bundle_id: str
    kind: str
    site: str
    segments: tuple[str, ...]
    agent_id: str
    agent_version: str
    job_id: str | None
    started_at: str
    finished_at: str
    counts: Mapping[str, int]
    key: str
    schema: str = SCHEMA

    def as_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "bundle_id": self.bundle_id, "kind": self.kind, "site": self.site,
                "segments": list(self.segments), "agent_id": self.agent_id, "agent_version": self.agent_version,
                "job_id": self.job_id, "started_at": self.started_at, "finished_at": self.finished_at,
                "counts": dict(self.counts), "key": self.key}

    def canonical(self) -> bytes:
        return canonical_json(self.as_dict())


@dataclass(frozen=True)
class VerifiedBundle:
    """A bundle that passed every check: whose it is, who signed it, and the database it carries."""

    manifest: BundleManifest
    signer: str  # fingerprint of the trusted key that verified the signature
    database: bytes = field(repr=False)
    size: int  # bytes of the whole bundle

    @property
    def bundle_id(self) -> str:
        return self.manifest.bundle_id


def canonical_json(document: Any) -> bytes:
    """The one byte form of a JSON document that is signed and compared."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def build_bundle(database: bytes, key: AgentKey, *, kind: str, site: str, segments: Sequence[str],
                 agent_id: str, agent_version: str, job_id: str | None, started_at: str,
                 finished_at: str, counts: Mapping[str, int]) -> bytes:
    """Sign and pack a run's SQLite bytes into a bundle. The manifest is checked as the centre
    will check it, so that an agent never ships a bundle the centre must refuse."""
    manifest = BundleManifest(
        bundle_id=hashlib.sha256(database).hexdigest(), kind=kind, site=site, segments=tuple(segments),
        agent_id=agent_id, agent_version=agent_version, job_id=job_id, started_at=started_at,
        finished_at=finished_at, counts=dict(counts), key=key.fingerprint)
    manifest_bytes = manifest.canonical()
    _parse_manifest(manifest_bytes)  # raises BundleRefused("malformed") on a bad field
    if not database.startswith(SQLITE_MAGIC):
        raise BundleRefused("malformed", "the run's database is not an SQLite file")
    return pack(manifest_bytes, key.sign(SIGNING_CONTEXT + manifest_bytes), database)


def pack(manifest: bytes, signature: bytes, database: bytes) -> bytes:
    """The container alone, with no checks (tests use it to build refused bundles)."""
    return b"".join([MAGIC, struct.pack(">I", len(manifest)), manifest, struct.pack(">H", len(signature)),
                     signature, struct.pack(">Q", len(database)), database])


def write_bundle(path: str | Path, bundle: bytes) -> Path:
    """Write a bundle file once: an existing file is never replaced (bundles are immutable)."""
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    try:
        with open(temporary, "xb") as handle:
            handle.write(bundle)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(temporary, target)
    except FileExistsError:
        raise OutputError(f"{target} already exists; a bundle file is never overwritten") from None
    except OSError as exc:
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror
        raise OutputError(f"cannot write the bundle {target}: {reason}") from exc
    finally:
        temporary.unlink(missing_ok=True)
    return target


def verify_bundle(path: str | Path, trusted_keys_by_site: Mapping[str, Sequence[Ed25519PublicKey]], *,
                  max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES) -> VerifiedBundle:
    """Verify the bundle file at ``path`` against the keys the centre trusts for each site."""
    bundle_path = Path(path)
    try:
        # O_NONBLOCK: a named pipe or a device given as a bundle must not block the open.
        descriptor = os.open(bundle_path, os.O_RDONLY | os.O_NONBLOCK)
    except IsADirectoryError:
        raise BundleRefused("not_a_bundle", f"{bundle_path} is a directory, not a bundle") from None
    except OSError as exc:
        raise BundleRefused("not_a_bundle", f"cannot read {bundle_path}: {exc.strerror}") from exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise BundleRefused("not_a_bundle", f"{bundle_path} is not a regular file")
        if info.st_size > max_bytes:
            raise BundleRefused("too_large", f"the bundle is {info.st_size} bytes, more than the "
                                             f"limit of {max_bytes} (max_bundle_bytes)")
        with os.fdopen(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise BundleRefused("not_a_bundle", f"cannot read {bundle_path}: {exc.strerror}") from exc
    finally:
        os.close(descriptor)
    return verify_bundle_bytes(data, trusted_keys_by_site, max_bytes=max_bytes)


def verify_bundle_bytes(data: bytes, trusted_keys_by_site: Mapping[str, Sequence[Ed25519PublicKey]], *,
                        max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES) -> VerifiedBundle:
    """Verify a bundle held in memory (an object fetched from the server, or a file's bytes)."""
    if len(data) > max_bytes:
        raise BundleRefused("too_large", f"the bundle is more than the limit of {max_bytes} bytes (max_bundle_bytes)")
    manifest_bytes, signature, database = _unpack(data)
    manifest = _parse_manifest(manifest_bytes)
    keys = trusted_keys_by_site.get(manifest.site)
    if keys is None:
        known = ", ".join(sorted(trusted_keys_by_site)) or "none"
        raise BundleRefused("unknown_site", f"the bundle is from site {manifest.site!r}, which this fleet does "
                                            f"not know (sites: {known})")
    if not signature:
        raise BundleRefused("unsigned", f"the bundle from site {manifest.site!r} is not signed")
    message = SIGNING_CONTEXT + manifest_bytes
    signer = next((fingerprint(k) for k in keys if verify_signature(k, signature, message)), None)
    if signer is None:
        raise _signature_refusal(manifest, signature, message, keys, trusted_keys_by_site)
    if hashlib.sha256(database).hexdigest() != manifest.bundle_id:
        raise BundleRefused("altered", f"the bundle from site {manifest.site!r} was altered: its database "
                                       "does not match the signed bundle id")
    if not database.startswith(SQLITE_MAGIC):
        raise BundleRefused("malformed", "the bundle's database is not an SQLite file")
    return VerifiedBundle(manifest=manifest, signer=signer, database=database, size=len(data))


def _signature_refusal(manifest: BundleManifest, signature: bytes, message: bytes,
                       keys: Sequence[Ed25519PublicKey],
                       trusted_keys_by_site: Mapping[str, Sequence[Ed25519PublicKey]]) -> BundleRefused:
    site = manifest.site
    for other_site, other_keys in sorted(trusted_keys_by_site.items()):
        if other_site == site:
            continue
        for key in other_keys:
            if verify_signature(key, signature, message):
                return BundleRefused("untrusted_key", f"the bundle claims site {site!r} but is signed by "
                                                      f"{fingerprint(key)}, a key trusted for site {other_site!r}")
    if not keys:
        return BundleRefused("untrusted_key", f"no key is trusted for site {site!r} yet "
                                              "(add the agent's with camaudit fleet trust)")
    if manifest.key not in {fingerprint(k) for k in keys}:
        return BundleRefused("untrusted_key", f"the bundle is signed by {manifest.key}, which is not trusted "
                                              f"for site {site!r} (add it with camaudit fleet trust)")
    return BundleRefused("altered", f"the bundle from site {site!r} was altered: its signature does not match")


def _unpack(data: bytes) -> tuple[bytes, bytes, bytes]:
    if len(data) < _HEADER or data[:_HEADER] != MAGIC:
        raise BundleRefused("not_a_bundle", "not a camaudit bundle")
    damaged = BundleRefused("altered", "the bundle is damaged or altered: its parts do not add up")
    offset = _HEADER
    if len(data) < offset + 4:
        raise damaged
    (manifest_length,) = struct.unpack_from(">I", data, offset)
    offset += 4
    if not 1 <= manifest_length <= MAX_MANIFEST_BYTES or len(data) < offset + manifest_length + 2:
        raise damaged
    manifest = data[offset:offset + manifest_length]
    offset += manifest_length
    (signature_length,) = struct.unpack_from(">H", data, offset)
    offset += 2
    if signature_length not in (0, SIGNATURE_BYTES) or len(data) < offset + signature_length + 8:
        raise damaged
    signature = data[offset:offset + signature_length]
    offset += signature_length
    (database_length,) = struct.unpack_from(">Q", data, offset)
    offset += 8
    if database_length < 1 or len(data) != offset + database_length:
        raise damaged
    return manifest, signature, data[offset:]


def _parse_manifest(raw: bytes) -> BundleManifest:
    def malformed(reason: str) -> BundleRefused:
        return BundleRefused("malformed", f"the bundle's manifest is malformed: {reason}")

    try:
        document = json.loads(raw.decode("ascii"), object_pairs_hook=_no_duplicates,
                              parse_constant=_no_constant, parse_float=_no_float)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BundleRefused("altered", "the bundle is damaged or altered: its manifest is not JSON") from None
    if not isinstance(document, dict):
        raise malformed("not a JSON object")
    schema = document.get("schema")
    if schema != SCHEMA:
        shown = schema if isinstance(schema, str) and len(schema) <= 64 else "unknown"
        raise BundleRefused("unknown_schema", f"the bundle has schema {shown!r}; this camaudit reads {SCHEMA} "
                                              "(upgrade camaudit at the centre if the agent is newer)")
    if canonical_json(document) != raw:
        raise BundleRefused("altered", "the bundle is damaged or altered: its manifest is not in canonical form")
    if set(document) != _FIELDS:
        missing = sorted(_FIELDS - set(document))
        extra = sorted(set(document) - _FIELDS)
        raise malformed(f"missing {missing}" if missing else f"unknown fields {extra}")

    def text(name: str, limit: int, *, nullable: bool = False) -> Any:
        value = document[name]
        if value is None and nullable:
            return None
        if not isinstance(value, str) or not value or len(value) > limit or not value.isprintable():
            raise malformed(f"{name} must be printable text of 1-{limit} characters")
        return value

    bundle_id = text("bundle_id", 64)
    if not _HEX64.fullmatch(bundle_id):
        raise malformed("bundle_id must be 64 hex digits")
    kind = text("kind", 16)
    if kind not in KINDS:
        raise malformed(f"kind must be one of {', '.join(KINDS)}")
    site = text("site", 32)
    if not SITE_NAME.fullmatch(site):
        raise malformed("site is not a valid site name")
    segments = document["segments"]
    if not isinstance(segments, list) or len(segments) > 1024 or not all(
            isinstance(s, str) and 0 < len(s) <= 128 and s.isprintable() for s in segments):
        raise malformed("segments must be a list of at most 1024 short texts")
    for name in ("started_at", "finished_at"):
        try:
            stamp = datetime.fromisoformat(text(name, 40))
        except ValueError:
            raise malformed(f"{name} is not an ISO 8601 time") from None
        if stamp.tzinfo is None:
            raise malformed(f"{name} has no time zone")
    counts = document["counts"]
    if not isinstance(counts, dict) or len(counts) > 256 or not all(
            isinstance(k, str) and 0 < len(k) <= 64 and type(v) is int and 0 <= v < 2**63
            for k, v in counts.items()):
        raise malformed("counts must map table names to row counts")
    key = text("key", 32)
    if not _FINGERPRINT.fullmatch(key):
        raise malformed("key must be a key fingerprint (ed25519:16 hex digits)")
    return BundleManifest(
        bundle_id=bundle_id, kind=kind, site=site, segments=tuple(segments), agent_id=text("agent_id", 128),
        agent_version=text("agent_version", 64), job_id=text("job_id", 128, nullable=True),
        started_at=document["started_at"], finished_at=document["finished_at"], counts=dict(counts), key=key)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate key {name!r}")
        result[name] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _no_float(text: str) -> Any:
    raise ValueError("numbers in a manifest are whole")
