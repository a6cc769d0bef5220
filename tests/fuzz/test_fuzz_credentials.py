"""Properties of the credentials loader (camaudit.credentials): any file, YAML or TOML, loads or
raises ConfigError (never another exception, so the CLI prints one line), and no error message
quotes a secret the file holds."""

from __future__ import annotations

from pathlib import Path

from fuzzkit import mutated, time_bound
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from camaudit.credentials import load_credentials
from camaudit.errors import ConfigError

YAML = b"""credentials:
  - address: 10.1.2.3
    username: audit
    password: "s3cret-one"
  - cidr: 10.1.0.0/16
    username: audit
    password_env: SEGMENT_PW
  - vendor: hikvision
    username: audit
    password: 'two'
  - default: true
    username: viewer
    password: "three"
"""
TOML = b"""[[credentials]]
address = "10.1.2.3"
username = "audit"
password = "s3cret-one"

[[credentials]]
cidr = "10.1.0.0/16"
username = "audit"
password_env = "SEGMENT_PW"

[[credentials]]
default = true
username = "viewer"
password = "three"
"""
TOKENS = (b"2001-02-30", b"1" * 5000, b"[" * 50, b"{" * 50, b"- " * 50, b"&a [*a]", b"!!python/object:os.system",
          b"!!binary", b"\t", b"\x00", b"\xff", b"'", b'"', b"yes", b"01234", b"1979-05-27T07:32:00Z", b"nan", b"\\u")
ENV = {"SEGMENT_PW": "from-env"}


def _load(tmp_path: Path, suffix: str, content: bytes) -> None:
    path = tmp_path / f"creds{suffix}"
    path.write_bytes(content)
    path.chmod(0o600)
    # PyYAML is pure Python (about 1 s for 5000 nested "[" here): the bound is wider than for
    # device parsers, and files stay at 16 KiB, a generous size for a credentials file.
    with time_bound(10):
        load_credentials(path, ENV)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)  # time_bound(10) guards it
@given(st.one_of(st.tuples(st.just(".yaml"), mutated([YAML], TOKENS, max_size=16 * 1024)),
                 st.tuples(st.just(".toml"), mutated([TOML], TOKENS, max_size=16 * 1024)),
                 st.tuples(st.sampled_from([".yaml", ".toml"]), st.binary(max_size=512))))
@example((".yaml", b"credentials: 2001-02-30\n"))  # a date YAML cannot build: ValueError
@example((".yaml", b"credentials: " + b"1" * 5000 + b"\n"))  # int() refuses > 4300 digits
@example((".toml", b"x = " + b"1" * 5000 + b"\n"))
@example((".yaml", b"credentials: " + b"[" * 2000 + b"\n"))  # deep nesting: RecursionError
@example((".toml", b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n"))
def test_any_file_loads_or_raises_config_error(tmp_path: Path, case: tuple[str, bytes]) -> None:
    suffix, content = case
    try:
        _load(tmp_path, suffix, content)
    except ConfigError as exc:
        assert "\n" not in str(exc)


SECRET = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=16).map(lambda s: "Zq" + s)
FIELDS = ("address", "cidr", "vendor", "default", "username", "password", "password_env")


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from(FIELDS), st.one_of(SECRET, st.just("10.1.2.3"), st.booleans()),
                                min_size=1, max_size=4), min_size=1, max_size=3),
       st.sampled_from([".yaml", ".toml"]))
def test_error_messages_never_quote_values(tmp_path: Path, entries: list[dict[str, object]], suffix: str) -> None:
    secrets = {v for entry in entries for k, v in entry.items() if isinstance(v, str) and v.startswith("Zq")
               and k != "password_env"}
    if suffix == ".toml":
        def toml_value(v: object) -> str:
            return ("true" if v else "false") if isinstance(v, bool) else f'"{v}"'
        content = "\n".join("[[credentials]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in e.items())
                            for e in entries)
    else:
        content = "credentials:\n" + "".join(
            "  - " + "\n    ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in e.items())
            + "\n" for e in entries)
    try:
        _load(tmp_path, suffix, content.encode())
    except ConfigError as exc:
        assert not any(secret in str(exc) for secret in secrets), str(exc)
