"""Every signature proves itself (STYLE.md "Signature format"): one parametrised test runs every
example and counter-example of every shipped signature file, and a set of broken files proves
that the verifier catches each kind of fault."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from camaudit.fingerprint import normalize
from camaudit.fingerprint.signatures import Signature, default_set, example_input, signature_files
from camaudit.fingerprint.verify import (
    device_types_match_model,
    first_match,
    verify,
    verify_signature_files,
    vocabulary,
)
from camaudit.model import OBSERVATION_KINDS

BAD = Path(__file__).resolve().parents[1] / "data" / "bad_signatures"

SIGNATURES = default_set().signatures
EXAMPLES = [
    pytest.param(sig, number, example, id=f"{sig.id}-{number}")
    for sig in SIGNATURES
    for number, example in enumerate(sig.examples, 1)
]
COUNTERS = [
    pytest.param(sig, number, counter, id=f"{sig.id}-counter-{number}")
    for sig in SIGNATURES
    for number, counter in enumerate(sig.counter_examples, 1)
]


def _file_entries(sig: Signature) -> list[Signature]:
    return [s for s in SIGNATURES if s.file == sig.file]


@pytest.mark.parametrize(("sig", "number", "example"), EXAMPLES)
def test_example_is_matched_first_by_its_own_signature_and_extracts_exactly(
    sig: Signature, number: int, example: dict
) -> None:
    text = example_input(example)
    winner = first_match(_file_entries(sig), sig.kind, text)
    assert winner is not None, f"example {number} of {sig.id} matches nothing"
    assert winner[0].id == sig.id, f"example {number} of {sig.id} is matched first by {winner[0].id}"
    expected = {k: str(v) for k, v in example["expect"].items()}
    assert winner[1] == expected


@pytest.mark.parametrize(("sig", "number", "counter"), COUNTERS)
def test_counter_example_is_not_matched(sig: Signature, number: int, counter: object) -> None:
    text = example_input(counter)
    assert sig.match(normalize.parts_for(sig.kind, text)) is None
    winner = first_match(_file_entries(sig), sig.kind, text)
    own_vendor = sig.source.get("extract", {}).get("vendor")
    if winner is not None and isinstance(own_vendor, str):
        assert winner[1].get("vendor") != own_vendor


def test_every_signature_has_examples_and_at_most_twenty() -> None:
    for sig in SIGNATURES:
        assert 1 <= len(sig.examples) <= 20, sig.id


def test_shipped_files_verify_clean() -> None:
    assert verify() == []


def test_every_file_reads_one_known_kind_and_ids_are_unique() -> None:
    ids = [s.id for s in SIGNATURES]
    assert len(ids) == len(set(ids))
    for path in signature_files():
        kinds = {s.kind for s in SIGNATURES if s.file == path.name}
        assert len(kinds) == 1 and kinds <= OBSERVATION_KINDS, path.name


def test_device_type_vocabulary_is_the_model_one() -> None:
    assert device_types_match_model()
    assert "unknown" not in vocabulary("vendors") and "generic" not in vocabulary("vendors")


def test_weak_kinds_stay_under_half() -> None:
    for sig in SIGNATURES:
        if sig.kind in ("mac", "favicon_mmh3", "favicon_md5", "http_title", "open_port"):
            assert sig.certainty < 0.5, sig.id


BAD_CASES = {
    "bad_regex.yaml": "bad-regex",
    "group_mismatch.yaml": "group-mismatch",
    "duplicate_id.yaml": "duplicate-id",
    "example_not_matching.yaml": "example-mismatch",
    "example_shadowed.yaml": "example-shadowed",
    "counter_example_matching.yaml": "counter-example-matched",
    "unknown_vendor.yaml": "vocabulary",
    "missing_examples.yaml": "missing-examples",
    "too_many_examples.yaml": "too-many-examples",
    "schema_violation.yaml": "schema",
    "weak_certainty.yaml": "weak-certainty",
    "lineage_mismatch.yaml": "lineage",
}


def test_every_bad_fixture_is_listed() -> None:
    assert {p.name for p in BAD.glob("*.yaml")} == set(BAD_CASES)


@pytest.mark.parametrize(("name", "code"), sorted(BAD_CASES.items()))
def test_verifier_reports_each_fault_kind(name: str, code: str) -> None:
    faults = verify_signature_files([BAD / name])
    assert faults, name
    assert {f.code for f in faults} == {code}, [str(f) for f in faults]


def test_verify_command_exit_codes_and_messages() -> None:
    ok = subprocess.run([sys.executable, "-m", "camaudit", "signatures", "verify"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "all checks pass" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "camaudit", "signatures", "verify",
                          str(BAD / "bad_regex.yaml"), str(BAD / "too_many_examples.yaml")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "[bad-regex]" in bad.stdout and "[too-many-examples]" in bad.stdout
    assert "Traceback" not in bad.stderr
    missing = subprocess.run([sys.executable, "-m", "camaudit", "signatures", "verify", "/nonexistent.yaml"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "no such signature file" in missing.stderr


def test_match_and_list_commands() -> None:
    out = subprocess.run([sys.executable, "-m", "camaudit", "signatures", "match", "http_server", "-"],
                         input="App-webs/\n", capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert '"id": "hikvision-app-webs"' in out.stdout
    listing = subprocess.run([sys.executable, "-m", "camaudit", "signatures", "list", "--kind", "sadp"],
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0 and "hikvision-sadp-probe-match" in listing.stdout
    wrong = subprocess.run([sys.executable, "-m", "camaudit", "signatures", "match", "nonsense", "x"],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown observation kind" in wrong.stderr
