"""Audit credentials: where they come from, and which device gets which.

Sources (DESIGN.md section 6, issue 4 item 7): a ``--credentials FILE`` (YAML or TOML), the
environment (``CAMAUDIT_USERNAME``/``CAMAUDIT_PASSWORD``), or an interactive prompt. A
credential never reaches the store, a log or a report: :class:`Credential` hides its password
from ``repr``/``str``, error messages about the file never quote its content, and the probes
scrub the password out of anything a device echoes back (``camaudit.redact``).

File format (YAML shown; TOML uses ``[[credentials]]`` tables with the same keys)::

    credentials:
      - address: 10.1.2.3          # one device
        username: audit
        password: "..."
      - cidr: 10.1.0.0/16          # a segment
        username: audit
        password_env: SEGMENT_PW   # or read the password from an environment variable
      - vendor: hikvision          # any device identified as this vendor
        username: audit
        password: "..."
      - default: true              # everything else
        username: viewer
        password: "..."

Lookup order: exact address, then the most specific CIDR, then vendor, then the file's
default, then the environment.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import stat
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)

ENV_USERNAME = "CAMAUDIT_USERNAME"
ENV_PASSWORD = "CAMAUDIT_PASSWORD"  # noqa: S105  (a variable name, not a password)

_MAX_FILE_BYTES = 1024 * 1024
_ENTRY_KEYS = frozenset({"address", "cidr", "vendor", "default", "username", "password", "password_env"})
_TOML_POSITION = re.compile(r"\(at (line \d+, column \d+|end of document)\)")
_KIND_WANTED = {"address": "IP address", "cidr": "CIDR network (like 10.1.0.0/16)", "vendor": "vendor name"}


class Credential:
    """A username and password. The password never shows in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_password", "source", "username")

    def __init__(self, username: str, password: str, source: str = "") -> None:
        self.username = username
        self._password = password
        #: Where it came from, for the report ("file entry 3 (cidr 10.1.0.0/16)", "environment").
        self.source = source

    @property
    def password(self) -> str:
        return self._password

    def __repr__(self) -> str:
        return f"Credential(username={self.username!r}, password='***', source={self.source!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Credential):
            return NotImplemented
        return (self.username, self._password) == (other.username, other._password)

    def __hash__(self) -> int:
        return hash((self.username, self._password))

    def __reduce__(self) -> Any:
        # Pickling would write the password somewhere camaudit does not control.
        raise TypeError("credentials cannot be pickled")


@dataclass(frozen=True, slots=True)
class _Entry:
    kind: str  # address | cidr | vendor | default
    match: str
    credential: Credential
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None


class CredentialStore:
    """Credentials keyed by address, CIDR or vendor, with an optional default."""

    def __init__(self, entries: Sequence[_Entry] = (), fallback: Credential | None = None) -> None:
        self._entries = list(entries)
        self._fallback = fallback

    def __repr__(self) -> str:
        return f"CredentialStore({len(self._entries)} entries, fallback={self._fallback is not None})"

    def __bool__(self) -> bool:
        return bool(self._entries) or self._fallback is not None

    def lookup(self, address: str, vendor: str | None = None) -> Credential | None:
        """The credential to use for ``address`` (identified as ``vendor``), or None."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            ip = None
        for entry in self._entries:
            if entry.kind == "address" and ip is not None and ipaddress.ip_address(entry.match) == ip:
                return entry.credential
        best: _Entry | None = None
        for entry in self._entries:
            net = entry.network
            if entry.kind == "cidr" and net is not None and ip is not None and ip.version == net.version:
                if ip in net and (best is None or best.network is None or net.prefixlen > best.network.prefixlen):
                    best = entry
        if best is not None:
            return best.credential
        if vendor:
            for entry in self._entries:
                if entry.kind == "vendor" and entry.match == vendor.lower():
                    return entry.credential
        for entry in self._entries:
            if entry.kind == "default":
                return entry.credential
        return self._fallback

    def secrets(self) -> list[str]:
        """Every password held, for scrubbing device replies (``redact(..., extra_secrets=)``)."""
        values = [e.credential.password for e in self._entries]
        if self._fallback is not None:
            values.append(self._fallback.password)
        return [v for v in values if v]


def from_environment(environ: Mapping[str, str] | None = None) -> Credential | None:
    """``CAMAUDIT_USERNAME``/``CAMAUDIT_PASSWORD``; both must be set, or neither is used."""
    env = os.environ if environ is None else environ
    username, password = env.get(ENV_USERNAME), env.get(ENV_PASSWORD)
    if username and password:
        return Credential(username, password, source="environment")
    if username or password:
        raise ConfigError(f"set both {ENV_USERNAME} and {ENV_PASSWORD}, or neither")
    return None


def load_credentials(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> CredentialStore:
    """Build the store from a credentials file (optional) and the environment."""
    env = os.environ if environ is None else environ
    entries = _read_file(Path(path), env) if path is not None else []
    return CredentialStore(entries, fallback=from_environment(env))


def prompt_credentials(
    read_username: Callable[[str], str] | None = None,
    read_password: Callable[[str], str] | None = None,
) -> CredentialStore:
    """Ask on the terminal (the password without echo) for one credential used for every device."""
    import getpass
    import sys

    if read_username is None and not sys.stdin.isatty():
        # A scheduled or piped run has nobody to answer: say so rather than wait or die on EOF.
        raise ConfigError("--ask-credentials needs a terminal; use --credentials FILE or "
                          "CAMAUDIT_USERNAME/CAMAUDIT_PASSWORD instead")

    def ask_on_stderr(prompt: str) -> str:
        # The prompt goes to stderr: stdout carries only the --json document.
        sys.stderr.write(prompt)
        sys.stderr.flush()
        return sys.stdin.readline().rstrip("\n")

    ask_user = read_username or ask_on_stderr
    ask_password = read_password or (lambda prompt: getpass.getpass(prompt, stream=sys.stderr))
    try:
        username = ask_user("Device username: ").strip()
        password = ask_password("Device password: ")
    except EOFError:
        raise ConfigError("no credentials entered") from None
    if not username or not password:
        raise ConfigError("no credentials entered")
    return CredentialStore(fallback=Credential(username, password, source="prompt"))


def _read_file(path: Path, env: Mapping[str, str]) -> list[_Entry]:
    try:
        info = path.stat()
        if info.st_size > _MAX_FILE_BYTES:
            raise ConfigError(f"credentials file {path} is larger than 1 MiB")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"credentials file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read credentials file {path}: {exc.strerror}") from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("credentials file %s is readable by other users; chmod 600 it", path)
    doc = _parse(path, raw)
    items = doc.get("credentials") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"credentials file {path}: expected a list under 'credentials'")
    return [_entry(path, number, item, env) for number, item in enumerate(items, 1)]


def _parse(path: Path, raw: bytes) -> Any:
    # Parser messages quote the offending line, which may hold a password: report the position only.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"credentials file {path} is not UTF-8 text") from None
    if path.suffix.lower() == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            found = _TOML_POSITION.search(str(exc))
            where = found.group(1) if found else "unknown position"
            raise ConfigError(f"credentials file {path} is not valid TOML ({where})") from None
        except (ValueError, RecursionError):
            # A number too long for int() (over 4300 digits) or nesting too deep to parse.
            raise ConfigError(f"credentials file {path} is not valid TOML (a value cannot be read)") from None
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        raise ConfigError(f"credentials file {path} is not valid YAML ({where})") from None
    except (ValueError, RecursionError):
        # YAML builds dates and numbers after parsing: 2001-02-30 or a 5000-digit number raise
        # ValueError (whose text quotes the value), and deep nesting exhausts the stack.
        raise ConfigError(f"credentials file {path} is not valid YAML (a value cannot be read)") from None


def _entry(path: Path, number: int, item: Any, env: Mapping[str, str]) -> _Entry:
    where = f"credentials file {path}, entry {number}"
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a table of keys")
    # Keys are named by position, not quoted: a mis-indented line can put a password there.
    for position, key in enumerate(item, 1):
        if key not in _ENTRY_KEYS:
            raise ConfigError(
                f"{where}: key {position} is not one of {', '.join(sorted(_ENTRY_KEYS))}"
            )
    selectors = [k for k in ("address", "cidr", "vendor", "default") if k in item]
    if len(selectors) != 1:
        raise ConfigError(f"{where}: give exactly one of address, cidr, vendor or default")
    kind = selectors[0]
    username = item.get("username")
    if not isinstance(username, str) or not username:
        raise ConfigError(f"{where}: 'username' is missing or not text")
    password = _password(where, item, env)
    network = None
    match = ""
    if kind == "default":
        if item["default"] is not True:
            raise ConfigError(f"{where}: 'default' must be true (write 'default: true')")
    else:
        value = item[kind]
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: '{kind}' must be a text value")
        match = value.strip()
        try:
            if kind == "address":
                match = str(ipaddress.ip_address(match))
            elif kind == "cidr":
                network = ipaddress.ip_network(match, strict=False)
                match = str(network)
            else:
                match = match.lower()
        except ValueError:
            # The value is not quoted: it may be a password typed into the wrong field.
            raise ConfigError(f"{where}: '{kind}' is not a valid {_KIND_WANTED[kind]}") from None
    label = f"{kind} {match}" if match else kind
    return _Entry(kind, match, Credential(username, password, f"file entry {number} ({label})"), network)


def _password(where: str, item: Mapping[str, Any], env: Mapping[str, str]) -> str:
    if "password" in item and "password_env" in item:
        raise ConfigError(f"{where}: give 'password' or 'password_env', not both")
    if "password_env" in item:
        name = item["password_env"]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: 'password_env' must name an environment variable")
        value = env.get(name)
        if not value:
            # The name is not quoted: it may be the password itself, put in the wrong field.
            raise ConfigError(f"{where}: the environment variable named in 'password_env' is not set")
        return value
    value = item.get("password")
    if value is None or value == "":
        raise ConfigError(f"{where}: 'password' is missing")
    if not isinstance(value, str):
        # YAML reads 01234 as an octal number and yes as true: refuse rather than guess.
        raise ConfigError(f"{where}: put the password in quotes")
    return value
