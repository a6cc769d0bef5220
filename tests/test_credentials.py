"""Credentials: file formats, lookup order, and that a password never shows."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from camaudit.credentials import (
    Credential,
    CredentialStore,
    from_environment,
    load_credentials,
    prompt_credentials,
)
from camaudit.errors import ConfigError

YAML = """
credentials:
  - address: 10.1.2.3
    username: one
    password: "pw-address"
  - cidr: 10.1.0.0/16
    username: wide
    password: "pw-wide"
  - cidr: 10.1.2.0/24
    username: narrow
    password_env: NARROW_PW
  - vendor: Hikvision
    username: hik
    password: "pw-hik"
  - default: true
    username: dflt
    password: "pw-default"
"""

TOML = """
[[credentials]]
cidr = "192.168.7.0/24"
username = "t"
password = "pw-toml"
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_lookup_order_address_cidr_vendor_default(tmp_path: Path) -> None:
    store = load_credentials(_write(tmp_path, "c.yaml", YAML), environ={"NARROW_PW": "pw-narrow"})
    assert store.lookup("10.1.2.3").username == "one"  # type: ignore[union-attr]
    assert store.lookup("10.1.2.9").username == "narrow"  # type: ignore[union-attr]  # most specific CIDR
    assert store.lookup("10.1.2.9").password == "pw-narrow"  # type: ignore[union-attr]
    assert store.lookup("10.1.9.9").username == "wide"  # type: ignore[union-attr]
    assert store.lookup("172.16.0.1", "hikvision").username == "hik"  # type: ignore[union-attr]
    assert store.lookup("172.16.0.1", "dahua").username == "dflt"  # type: ignore[union-attr]
    assert store.lookup("not-an-ip").username == "dflt"  # type: ignore[union-attr]


def test_toml_and_environment_fallback(tmp_path: Path) -> None:
    env = {"CAMAUDIT_USERNAME": "envuser", "CAMAUDIT_PASSWORD": "pw-env"}
    store = load_credentials(_write(tmp_path, "c.toml", TOML), environ=env)
    assert store.lookup("192.168.7.4").password == "pw-toml"  # type: ignore[union-attr]
    fallback = store.lookup("10.9.9.9")
    assert fallback is not None and fallback.username == "envuser" and fallback.source == "environment"
    assert sorted(store.secrets()) == ["pw-env", "pw-toml"]


def test_no_credentials_at_all() -> None:
    store = load_credentials(None, environ={})
    assert not store
    assert store.lookup("10.0.0.1") is None
    with pytest.raises(ConfigError, match="set both"):
        from_environment({"CAMAUDIT_USERNAME": "only-user"})


def test_password_never_in_repr_str_or_pickle() -> None:
    cred = Credential("audit", "Sup3r-Secret", source="prompt")
    for text in (repr(cred), str(cred), f"{cred}", f"{cred!r}", repr([cred]), repr(CredentialStore(fallback=cred))):
        assert "Sup3r-Secret" not in text
    assert "audit" in repr(cred)
    with pytest.raises(TypeError):
        pickle.dumps(cred)


@pytest.mark.parametrize(
    "text, message",
    [
        ("credentials: [{cidr: 10.0.0.0/8, username: u}]", "'password' is missing"),
        ("credentials: [{cidr: 10.0.0.0/8, username: u, password: 01234}]", "quotes"),
        ("credentials: [{cidr: nonsense, username: u, password: 'p'}]", "'cidr' is not a valid CIDR"),
        ("credentials: [{username: u, password: 'p'}]", "exactly one of"),
        ("credentials: [{cidr: 10.0.0.0/8, vendor: x, username: u, password: 'p'}]", "exactly one of"),
        ("credentials: [{address: 10.0.0.1, username: u, password: 'p', extra: 1}]", "key 4 is not one of"),
        ("credentials: [{default: true, username: u, password_env: NOPE_UNSET}]", "named in 'password_env' is not set"),
        ("something: else", "expected a list"),
    ],
)
def test_bad_entries_give_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        load_credentials(_write(tmp_path, "c.yaml", text), environ={})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "entry",
    [
        "{address: Leak-Me-9981, username: u, password: 'p'}",
        "{cidr: Leak-Me-9981, username: u, password: 'p'}",
        "{address: '10.0.0.1/Leak-Me-9981', username: u, password: 'p'}",
        "{default: Leak-Me-9981, username: u, password: 'p'}",
        "{default: true, username: u, password_env: Leak-Me-9981}",
        "{default: true, username: u, Leak-Me-9981: p}",
        "{default: true, username: u, password: 'p', password_env: Leak-Me-9981}",
        "{default: true, username: [Leak-Me-9981], password: 'p'}",
        "{default: true, username: u, password: [Leak-Me-9981]}",
        "{vendor: [Leak-Me-9981], username: u, password: 'p'}",
        "[Leak-Me-9981]",
    ],
)
def test_entry_errors_never_echo_a_value(tmp_path: Path, entry: str) -> None:
    text = f"credentials:\n  - {{default: true, username: ok, password: 'p'}}\n  - {entry}\n"
    with pytest.raises(ConfigError) as info:
        load_credentials(_write(tmp_path, "c.yaml", text), environ={})
    assert "Leak-Me-9981" not in str(info.value)
    assert "entry 2" in str(info.value)


@pytest.mark.parametrize("name, text", [
    ("c.yaml", "credentials:\n  - username: u\n    password: \"Leaky-Pw\n  bad: [\n"),
    ("c.toml", '[[credentials]]\nusername = "u"\npassword = "Leaky-Pw\n'),
    ("c.toml", '[[credentials]]\nusername = "u"\npassword = Leaky-Pw\n'),
    ("c.toml", '[[credentials]]\nusername = "u"\n(Leaky-Pw = 1\n'),
])
def test_parse_errors_do_not_quote_the_file(tmp_path: Path, name: str, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_credentials(_write(tmp_path, name, text), environ={})
    assert "Leaky-Pw" not in str(info.value)
    assert "line" in str(info.value)


def test_missing_file_and_world_readable_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_credentials(tmp_path / "nope.yaml", environ={})
    path = _write(tmp_path, "c.yaml", YAML)
    path.chmod(0o644)
    load_credentials(path, environ={"NARROW_PW": "x"})
    assert "readable by other users" in caplog.text
    assert "pw-address" not in caplog.text


def test_prompt_helper() -> None:
    store = prompt_credentials(lambda _p: " audit ", lambda _p: "typed-pw")
    cred = store.lookup("10.0.0.1")
    assert cred is not None and cred.username == "audit" and cred.password == "typed-pw"
    with pytest.raises(ConfigError):
        prompt_credentials(lambda _p: "audit", lambda _p: "")
