"""Evidence bundles as untrusted input: every refusal is one BundleRefused with a one-line reason."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from camaudit.errors import BundleRefused, OutputError
from camaudit.fleet.bundle import (
    MAGIC,
    SIGNING_CONTEXT,
    build_bundle,
    canonical_json,
    pack,
    verify_bundle,
    verify_bundle_bytes,
    write_bundle,
)
from camaudit.fleet.keys import AgentKey, load_or_create_key


def run_database(tmp_path: Path) -> bytes:
    """A small real SQLite file, standing in for the rows of one run."""
    path = tmp_path / "run.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE scans (id TEXT PRIMARY KEY, site TEXT, status TEXT)")
        db.execute("INSERT INTO scans VALUES ('3f1e', 'pool', 'complete')")
    db.close()
    return path.read_bytes()


MANIFEST: dict[str, Any] = dict(kind="scan", site="pool", segments=["10.1.0.0/24"], agent_id="agent-1",
                                agent_version="0.1.0", job_id="job-1", started_at="2026-12-04T01:00:00+00:00",
                                finished_at="2026-12-04T01:05:00+00:00", counts={"scans": 1})


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, AgentKey]:
    base = tmp_path_factory.mktemp("keys")
    return {name: load_or_create_key(base / f"{name}.key") for name in ("pool", "yard", "stranger")}


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return run_database(tmp_path_factory.mktemp("db"))


@pytest.fixture(scope="module")
def trusted(keys: dict[str, AgentKey]) -> dict[str, list]:
    return {"pool": [keys["pool"].public_key], "yard": [keys["yard"].public_key]}


@pytest.fixture(scope="module")
def bundle(keys: dict[str, AgentKey], database: bytes) -> bytes:
    return build_bundle(database, keys["pool"], **MANIFEST)


def refusal(data: bytes, trusted: dict[str, list]) -> BundleRefused:
    with pytest.raises(BundleRefused) as refused:
        verify_bundle_bytes(data, trusted)
    assert "\n" not in str(refused.value)
    return refused.value


def test_a_valid_bundle_verifies_and_gives_back_its_database(bundle: bytes, trusted: dict, keys: dict,
                                                             database: bytes, tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "run.bundle", bundle)
    verified = verify_bundle(path, trusted)
    assert verified.database == database
    assert verified.bundle_id == hashlib.sha256(database).hexdigest()
    assert verified.signer == keys["pool"].fingerprint
    assert verified.manifest.site == "pool" and verified.manifest.counts == {"scans": 1}
    assert verified.manifest.segments == ("10.1.0.0/24",) and verified.manifest.job_id == "job-1"


def test_a_bundle_file_is_never_overwritten(bundle: bytes, tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "run.bundle", bundle)
    with pytest.raises(OutputError, match="never overwritten"):
        write_bundle(path, b"other")
    assert path.read_bytes() == bundle


def test_unsigned_is_refused(bundle: bytes, trusted: dict, database: bytes, keys: dict) -> None:
    manifest = _manifest(database, keys["pool"])
    assert refusal(pack(manifest, b"", database), trusted).code == "unsigned"


def test_signed_by_the_other_sites_key_is_refused_and_says_whose(trusted: dict, keys: dict, database: bytes) -> None:
    forged = build_bundle(database, keys["yard"], **MANIFEST)  # yard's key, claiming site pool
    refused = refusal(forged, trusted)
    assert refused.code == "untrusted_key"
    assert f"signed by {keys['yard'].fingerprint}, a key trusted for site 'yard'" in str(refused)


def test_signed_by_an_unknown_key_is_refused(trusted: dict, keys: dict, database: bytes) -> None:
    refused = refusal(build_bundle(database, keys["stranger"], **MANIFEST), trusted)
    assert refused.code == "untrusted_key" and keys["stranger"].fingerprint in str(refused)


def test_a_site_with_no_trusted_key_yet_says_so(keys: dict, database: bytes, bundle: bytes) -> None:
    refused = refusal(bundle, {"pool": [], "yard": [keys["yard"].public_key]})
    assert refused.code == "untrusted_key" and "no key is trusted for site 'pool'" in str(refused)


def test_a_site_the_fleet_does_not_know_is_refused(bundle: bytes, keys: dict) -> None:
    refused = refusal(bundle, {"yard": [keys["yard"].public_key]})
    assert refused.code == "unknown_site" and "'pool'" in str(refused)


def test_an_altered_database_is_refused(bundle: bytes, trusted: dict) -> None:
    altered = bytearray(bundle)
    altered[-100] ^= 0x01
    refused = refusal(bytes(altered), trusted)
    assert refused.code == "altered" and "does not match the signed bundle id" in str(refused)


def test_an_altered_manifest_is_refused(bundle: bytes, trusted: dict) -> None:
    altered = bundle.replace(b'"scans":1', b'"scans":2', 1)
    assert altered != bundle
    refused = refusal(altered, trusted)
    assert refused.code == "altered" and "signature does not match" in str(refused)


def test_an_unknown_schema_says_which_it_is_and_which_this_camaudit_reads(keys: dict, database: bytes,
                                                                          trusted: dict) -> None:
    document = json.loads(_manifest(database, keys["pool"]))
    document["schema"] = "camaudit.bundle/2"
    manifest = canonical_json(document)
    refused = refusal(pack(manifest, keys["pool"].sign(SIGNING_CONTEXT + manifest), database), trusted)
    assert refused.code == "unknown_schema"
    assert "'camaudit.bundle/2'" in str(refused) and "this camaudit reads camaudit.bundle/1" in str(refused)


def test_a_non_canonical_manifest_is_refused_even_when_signed(keys: dict, database: bytes, trusted: dict) -> None:
    manifest = json.dumps(json.loads(_manifest(database, keys["pool"])), indent=1).encode()
    refused = refusal(pack(manifest, keys["pool"].sign(SIGNING_CONTEXT + manifest), database), trusted)
    assert refused.code == "altered"


def test_a_manifest_with_an_extra_field_is_refused(keys: dict, database: bytes, trusted: dict) -> None:
    document = json.loads(_manifest(database, keys["pool"]))
    document["path"] = "../../etc/passwd"
    manifest = canonical_json(document)
    refused = refusal(pack(manifest, keys["pool"].sign(SIGNING_CONTEXT + manifest), database), trusted)
    assert refused.code == "malformed" and "unknown fields ['path']" in str(refused)


def test_a_signed_bundle_whose_content_is_not_sqlite_is_refused(keys: dict, trusted: dict) -> None:
    content = b"#!/bin/sh\nrm -rf /\n"
    document = json.loads(_manifest(content, keys["pool"]))
    manifest = canonical_json(document)
    refused = refusal(pack(manifest, keys["pool"].sign(SIGNING_CONTEXT + manifest), content), trusted)
    assert refused.code == "malformed"


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04zipfile", b"SQLite format 3\x00" + b"\x00" * 100,
                                  MAGIC, MAGIC + b"\xff\xff\xff\xff"])
def test_what_is_not_a_bundle_is_refused(data: bytes, trusted: dict) -> None:
    assert refusal(data, trusted).code in ("not_a_bundle", "altered")


def test_trailing_bytes_are_refused(bundle: bytes, trusted: dict) -> None:
    assert refusal(bundle + b"\x00", trusted).code == "altered"


def test_a_bundle_over_the_size_limit_is_refused_before_reading(bundle: bytes, trusted: dict, tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "big.bundle", bundle)
    with pytest.raises(BundleRefused) as refused:
        verify_bundle(path, trusted, max_bytes=len(bundle) - 1)
    assert refused.value.code == "too_large"


def test_a_huge_declared_length_is_refused_without_allocating(trusted: dict) -> None:
    data = MAGIC + struct.pack(">I", 10) + b"{" * 10 + struct.pack(">H", 0) + struct.pack(">Q", 2**63)
    assert refusal(data, trusted).code == "altered"


def test_a_directory_or_a_missing_file_is_not_a_bundle(trusted: dict, tmp_path: Path) -> None:
    for path in (tmp_path, tmp_path / "missing.bundle"):
        with pytest.raises(BundleRefused) as refused:
            verify_bundle(path, trusted)
        assert refused.value.code == "not_a_bundle"


def test_building_refuses_a_manifest_the_centre_would_refuse(keys: dict, database: bytes) -> None:
    with pytest.raises(BundleRefused, match="malformed"):
        build_bundle(database, keys["pool"], **{**MANIFEST, "started_at": "yesterday"})
    with pytest.raises(BundleRefused, match="malformed"):
        build_bundle(database, keys["pool"], **{**MANIFEST, "site": "../yard"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_single_byte_change_is_refused(bundle: bytes, trusted: dict, data: st.DataObject) -> None:
    position = data.draw(st.integers(0, len(bundle) - 1), label="position")
    value = data.draw(st.integers(0, 255).filter(lambda v: v != bundle[position]), label="value")
    altered = bytearray(bundle)
    altered[position] = value
    with pytest.raises(BundleRefused):
        verify_bundle_bytes(bytes(altered), trusted)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(prefix=st.sampled_from([b"", MAGIC, MAGIC + struct.pack(">I", 40)]), tail=st.binary(max_size=400))
def test_random_bytes_raise_nothing_but_bundle_refused(trusted: dict, prefix: bytes, tail: bytes) -> None:
    try:
        verify_bundle_bytes(prefix + tail, trusted)
    except BundleRefused as refused:
        assert "\n" not in str(refused)
    else:  # pragma: no cover - a forged valid bundle would be a signature break
        pytest.fail("random bytes verified as a bundle")


def _manifest(database: bytes, key: AgentKey) -> bytes:
    return canonical_json({"schema": "camaudit.bundle/1", "bundle_id": hashlib.sha256(database).hexdigest(),
                           "key": key.fingerprint, **MANIFEST})


def test_a_named_pipe_given_as_a_bundle_is_refused_without_blocking(tmp_path: Path, trusted: dict) -> None:
    import threading

    pipe = tmp_path / "pipe.bundle"
    os.mkfifo(pipe)
    outcome: list[BaseException] = []
    worker = threading.Thread(target=lambda: _capture(outcome, lambda: verify_bundle(pipe, trusted)), daemon=True)
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():  # unblock the thread before failing, so that pytest can end
        with open(pipe, "wb"):
            pass
        pytest.fail("verify_bundle blocked on a named pipe")
    assert len(outcome) == 1 and isinstance(outcome[0], BundleRefused) and outcome[0].code == "not_a_bundle"


def _capture(outcome: list[BaseException], action: Any) -> None:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever was raised
        outcome.append(exc)
