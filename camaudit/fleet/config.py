"""Fleet files: what ``camaudit fleet init`` writes, and how the centre and agents read them.

``fleet init DIR --site A --site B --server nats://HOST:PORT`` writes, each 0600:

- ``DIR/nats-server.conf``: the NATS server's configuration: JetStream on (store in
  ``DIR/jetstream``), one user per site and one for the centre, each with the least-privilege
  permissions of :mod:`camaudit.fleet.subjects`. It holds every password: it stays on the server.
- ``DIR/central.toml``: the server URL, the centre's credentials, the fleet's sites and, per site,
  the agents' public keys the centre trusts for that site's bundles (empty at first).
- ``DIR/site-NAME.toml``: the server URL and that site's credentials only; copied to the site's
  agent. The agent makes its own signing key on first start (``key_file``, beside the file), and
  ``camaudit fleet key --fleet site-NAME.toml`` prints its public key; the centre trusts it with
  ``camaudit fleet trust DIR --site NAME KEYFILE``.

Secrets are random (``secrets.token_urlsafe``), written only to these files and never printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import stat
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..config import FleetConfig
from ..errors import ConfigError, OutputError
from . import subjects
from .keys import fingerprint, parse_public_key, public_key_text

CENTRAL_FILE = "central.toml"
SERVER_FILE = "nats-server.conf"
DEFAULT_KEY_FILE = "agent-ed25519.key"
DEFAULT_PORT = 4222
FILE_SCHEMA = 1
#: Limits written to and read from a fleet file's [limits] table (FleetConfig minus the URL).
LIMIT_FIELDS = tuple(f.name for f in dataclasses.fields(FleetConfig) if f.name != "server")


def site_file(site: str) -> str:
    return f"site-{site}.toml"


@dataclass(frozen=True)
class CentralSettings:
    """The centre's view of the fleet: where the server is, who it is, whom it trusts."""

    path: Path
    server: str
    user: str
    password: str = field(repr=False)
    sites: Mapping[str, tuple[Ed25519PublicKey, ...]]
    limits: FleetConfig = field(default_factory=FleetConfig)

    @property
    def inbox_prefix(self) -> str:
        return subjects.CENTRAL_INBOX

    @property
    def principal(self) -> str:
        return "the centre"


@dataclass(frozen=True)
class SiteSettings:
    """One site agent's file: the server, its own credentials, where its signing key lives."""

    path: Path
    site: str
    server: str
    user: str
    password: str = field(repr=False)
    key_file: Path
    limits: FleetConfig = field(default_factory=FleetConfig)

    @property
    def inbox_prefix(self) -> str:
        return subjects.site_inbox(self.site)

    @property
    def principal(self) -> str:
        return f"site {self.site!r}"


def check_server_url(url: str) -> tuple[str, int]:
    """``nats://HOST:PORT`` (or ``tls://``) -> (host, port); ConfigError otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"{url!r} is not a NATS server URL (example: nats://central.example.org:4222)") from None
    if parts.scheme not in ("nats", "tls") or not parts.hostname or parts.path not in ("", "/") or parts.username:
        raise ConfigError(f"{url!r} is not a NATS server URL (example: nats://central.example.org:4222)")
    return parts.hostname, port


def init_fleet(directory: str | Path, sites: Iterable[str], *, server: str = FleetConfig().server,
               listen: str | None = None, limits: FleetConfig | None = None) -> list[Path]:
    """Write a new fleet's files into ``directory``; refuse if it already holds one."""
    names = [subjects.check_site_name(s) for s in sites]
    if not names:
        raise ConfigError("a fleet needs at least one --site")
    if len(set(names)) != len(names):
        raise ConfigError("each --site may be given once")
    host, port = check_server_url(server)
    listen_on = _check_listen(listen) if listen else f"{_listen_host(host)}:{port}"
    limits = dataclasses.replace(limits or FleetConfig(), server=server)
    root = Path(directory).absolute()
    targets = [root / CENTRAL_FILE, root / SERVER_FILE, *(root / site_file(s) for s in names)]
    existing = [t for t in targets if t.exists()]
    if existing:
        raise ConfigError(f"{existing[0]} already exists; fleet init never overwrites a fleet's secrets")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {root}: {exc.strerror}") from exc
    central_password = _secret()
    site_passwords = {s: _secret() for s in names}
    users: list[dict[str, Any]] = [{"user": subjects.CENTRAL_USER, "password": central_password,
                                    "permissions": subjects.central_permissions()}]
    users += [{"user": subjects.site_user(s), "password": site_passwords[s],
               "permissions": subjects.site_permissions(s)} for s in names]
    written = [
        _write_new(root / SERVER_FILE, render_server_conf(listen_on, root / "jetstream", users)),
        _write_new(root / CENTRAL_FILE, render_central(CentralSettings(
            path=root / CENTRAL_FILE, server=server, user=subjects.CENTRAL_USER, password=central_password,
            sites={s: () for s in names}, limits=limits))),
    ]
    for s in names:
        written.append(_write_new(root / site_file(s), render_site(SiteSettings(
            path=root / site_file(s), site=s, server=server, user=subjects.site_user(s),
            password=site_passwords[s], key_file=Path(DEFAULT_KEY_FILE), limits=limits))))
    return written


def render_server_conf(listen: str, store_dir: Path, users: list[dict[str, Any]]) -> str:
    # NATS reads JSON values inside its config syntax; quoted strings are never $-substituted.
    lines = [
        "# The NATS server of a camaudit fleet, written by `camaudit fleet init`.",
        "# It holds every principal's password: keep it 0600, on the server only.",
        "# Run: nats-server -c nats-server.conf   (open only this port, and only from the sites)",
        f"listen: {json.dumps(listen)}",
        'server_name: "camaudit-central"',
        "max_payload: 1048576",
        "jetstream {",
        f"  store_dir: {json.dumps(str(store_dir))}",
        "}",
        "authorization {",
        "  users: [",
    ]
    lines += [f"    {json.dumps(user)}" for user in users]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def render_central(settings: CentralSettings) -> str:
    lines = [
        "# camaudit fleet: the centre's file (camaudit fleet init). It holds the centre's NATS password:",
        "# keep it 0600, at the centre only. Agents get their own site-NAME.toml, never this file.",
        "[fleet]",
        'role = "central"',
        f"schema = {FILE_SCHEMA}",
        f"server = {_toml_str(settings.server)}",
        f"user = {_toml_str(settings.user)}",
        f"password = {_toml_str(settings.password)}",
        "",
        *_render_limits(settings.limits),
    ]
    for site, keys in sorted(settings.sites.items()):
        lines += ["", f"[sites.{site}]",
                  f"# Public keys trusted for bundles from site {site}: camaudit fleet trust DIR --site {site} KEYFILE",
                  "keys = ["]
        lines += [f"  {_toml_str(public_key_text(k))},  # {fingerprint(k)}" for k in keys]
        lines += ["]"]
    return "\n".join(lines) + "\n"


def render_site(settings: SiteSettings) -> str:
    lines = [
        f"# camaudit fleet: the agent file of site {settings.site} (camaudit fleet init). It holds this site's",
        "# NATS password: keep it 0600, on this site's agent only.",
        "[fleet]",
        'role = "site"',
        f"schema = {FILE_SCHEMA}",
        f"site = {_toml_str(settings.site)}",
        f"server = {_toml_str(settings.server)}",
        f"user = {_toml_str(settings.user)}",
        f"password = {_toml_str(settings.password)}",
        "# The agent's own signing key, made on its first start (relative to this file's directory).",
        "# Never copy it between agents: print its public key with camaudit fleet key --fleet FILE.",
        f"key_file = {_toml_str(str(settings.key_file))}",
        "",
        *_render_limits(settings.limits),
    ]
    return "\n".join(lines) + "\n"


def load_central(path: str | Path) -> CentralSettings:
    file = Path(path)
    data = _read_toml(file)
    fleet = _table(data, "fleet", file)
    _check_role(fleet, "central", file)
    sites_table = data.get("sites", {})
    if not isinstance(sites_table, dict) or not sites_table:
        raise ConfigError(f"{file}: [sites] lists no site")
    sites: dict[str, tuple[Ed25519PublicKey, ...]] = {}
    seen: dict[str, str] = {}
    for site, table in sites_table.items():
        subjects.check_site_name(site)
        keys_text = table.get("keys", []) if isinstance(table, dict) else None
        if not isinstance(keys_text, list) or not all(isinstance(k, str) for k in keys_text):
            raise ConfigError(f"{file}: [sites.{site}] keys must be a list of public keys")
        keys = []
        for text in keys_text:
            try:
                key = parse_public_key(text)
            except ConfigError as exc:
                raise ConfigError(f"{file}: [sites.{site}]: {exc}") from None
            other = seen.setdefault(fingerprint(key), site)
            if other != site:
                raise ConfigError(f"{file}: key {fingerprint(key)} is trusted for both site {other!r} and "
                                  f"site {site!r}; one agent key belongs to one site")
            keys.append(key)
        sites[site] = tuple(keys)
    server = _text(fleet, "server", file)
    check_server_url(server)
    return CentralSettings(path=file, server=server, user=_text(fleet, "user", file),
                           password=_text(fleet, "password", file), sites=sites,
                           limits=_load_limits(data, file, server))


def load_site(path: str | Path) -> SiteSettings:
    file = Path(path)
    data = _read_toml(file)
    fleet = _table(data, "fleet", file)
    _check_role(fleet, "site", file)
    site = subjects.check_site_name(_text(fleet, "site", file))
    server = _text(fleet, "server", file)
    check_server_url(server)
    key_file = Path(fleet.get("key_file", DEFAULT_KEY_FILE))
    if not key_file.is_absolute():
        key_file = file.absolute().parent / key_file
    return SiteSettings(path=file, site=site, server=server, user=_text(fleet, "user", file),
                        password=_text(fleet, "password", file), key_file=key_file,
                        limits=_load_limits(data, file, server))


def trust_key(directory_or_file: str | Path, site: str, key_text: str) -> tuple[str, bool]:
    """Add a public key to the keys the centre trusts for ``site``; (fingerprint, newly added).

    A key already trusted for another site is refused: an agent key belongs to one site, and a
    cloned key would let one site's bundles pass as another's.
    """
    path = Path(directory_or_file)
    if path.is_dir():
        path = path / CENTRAL_FILE
    settings = load_central(path)
    key = parse_public_key(key_text)
    name = fingerprint(key)
    if site not in settings.sites:
        raise ConfigError(f"site {site!r} is not in this fleet (sites: {', '.join(sorted(settings.sites))})")
    for other, keys in settings.sites.items():
        if other != site and name in {fingerprint(k) for k in keys}:
            raise ConfigError(f"key {name} is already trusted for site {other!r}; one agent key belongs to one site")
    if name in {fingerprint(k) for k in settings.sites[site]}:
        return name, False
    sites = dict(settings.sites)
    sites[site] = (*sites[site], key)
    _replace(path, render_central(dataclasses.replace(settings, sites=sites)))
    return name, True


def _check_listen(listen: str) -> str:
    host, _, port_text = listen.rpartition(":")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65535 or any(
            c.isspace() or c in "\"'{}[]#;" for c in host):
        raise ConfigError(f"--listen {listen!r} is not HOST:PORT (example: 0.0.0.0:4222)")
    return listen


def _listen_host(host: str) -> str:
    # A literal address in the URL is where the server listens; a name may resolve differently
    # at the centre (NAT, split DNS), so the server listens on every interface of the centre.
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return "0.0.0.0"
    return host


def _secret() -> str:
    return secrets.token_urlsafe(32)


def _toml_str(text: str) -> str:
    return json.dumps(text)  # a JSON string with ASCII escapes is a TOML basic string


def _render_limits(limits: FleetConfig) -> list[str]:
    lines = ["[limits]", "# See config/fleet.example.toml for what each limit means."]
    for name in LIMIT_FIELDS:
        lines.append(f"{name} = {getattr(limits, name)!r}")
    return lines


def _load_limits(data: dict[str, Any], file: Path, server: str) -> FleetConfig:
    table = data.get("limits", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{file}: [limits] must be a table")
    base = FleetConfig(server=server)
    changes: dict[str, Any] = {}
    for name, value in table.items():
        if name not in LIMIT_FIELDS:
            raise ConfigError(f"{file}: [limits] has no setting {name!r}; known: {', '.join(LIMIT_FIELDS)}")
        default = getattr(base, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or (
                isinstance(default, int) and not isinstance(value, int)):
            raise ConfigError(f"{file}: [limits] {name} must be a positive {type(default).__name__}, not {value!r}")
        changes[name] = type(default)(value)
    limits = dataclasses.replace(base, **changes)
    if limits.job_duplicate_window > limits.job_max_age:
        raise ConfigError(f"{file}: [limits] job_duplicate_window must not exceed job_max_age")
    return limits


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        info = file.stat()
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no fleet file at {file} (camaudit fleet init writes them)") from None
    except IsADirectoryError:
        raise ConfigError(f"{file} is a directory; give the fleet file inside it") from None
    except OSError as exc:
        raise ConfigError(f"cannot read the fleet file {file}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not a fleet file (not UTF-8 text)") from None
    if info.st_mode & 0o077:
        import logging

        logging.getLogger(__name__).warning("%s holds a password and can be read by others: run chmod 600 %s",
                                            file, file)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None


def _table(data: dict[str, Any], name: str, file: Path) -> dict[str, Any]:
    table = data.get(name)
    if not isinstance(table, dict):
        raise ConfigError(f"{file} is not a camaudit fleet file (no [{name}] table)")
    return table


def _check_role(fleet: dict[str, Any], role: str, file: Path) -> None:
    found = fleet.get("role")
    if found != role:
        wanted = "central.toml" if role == "central" else "a site-NAME.toml"
        raise ConfigError(f"{file} is a {found or 'unknown'} fleet file; this command needs {wanted}")
    if fleet.get("schema") != FILE_SCHEMA:
        raise ConfigError(f"{file} has fleet file schema {fleet.get('schema')!r}; this camaudit reads {FILE_SCHEMA}")


def _text(table: dict[str, Any], name: str, file: Path) -> str:
    value = table.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{file}: [fleet] {name} is missing")
    return value


def _write_new(path: Path, text: str) -> Path:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} already exists; fleet init never overwrites a fleet's secrets") from None
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def _replace(path: Path, text: str) -> None:
    """Rewrite a fleet file atomically, keeping it 0600."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror}") from exc
