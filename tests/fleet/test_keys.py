"""Agent keys: made on first start, 0600, never overwritten, refused when others can read them."""

from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from camaudit.errors import ConfigError
from camaudit.fleet.keys import fingerprint, load_key, load_or_create_key, parse_public_key, public_key_text


def test_first_start_creates_a_private_key_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "agent.key"
    key = load_or_create_key(path)
    assert key.created is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key.fingerprint.startswith("ed25519:") and len(key.fingerprint) == len("ed25519:") + 16
    assert [p.name for p in path.parent.iterdir()] == ["agent.key"]  # no temporary file left


def test_the_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    first = load_or_create_key(path)
    content = path.read_bytes()
    second = load_or_create_key(path)
    assert second.created is False
    assert second.fingerprint == first.fingerprint
    assert path.read_bytes() == content


def test_agents_starting_together_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_key(path), range(16)))
    assert len({k.fingerprint for k in keys}) == 1


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.key"
    load_or_create_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(ConfigError, match="can be read by others: run chmod 600"):
        load_or_create_key(path)


@pytest.mark.parametrize("content", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                                     b"x" * 10000])
def test_a_file_that_is_not_a_key_is_one_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "agent.key"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="is not an agent key"):
        load_key(path)


def test_an_rsa_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "agent.key"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="not an Ed25519 key"):
        load_key(path)


def test_public_key_text_round_trips_and_names_the_same_fingerprint(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "agent.key")
    text = key.public_text
    assert text.startswith("camaudit-ed25519 ") and "\n" not in text
    assert fingerprint(parse_public_key(text + "  # a comment\n")) == key.fingerprint
    assert public_key_text(parse_public_key(text)) == text


@pytest.mark.parametrize("text", ["", "ssh-ed25519 AAAA", "camaudit-ed25519", "camaudit-ed25519 !!!",
                                  "camaudit-ed25519 AAAA"])
def test_a_text_that_is_not_a_public_key_is_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not a camaudit public key"):
        parse_public_key(text)
