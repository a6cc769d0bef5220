"""An agent's Ed25519 signing key: made on the agent's first start, kept 0600, never overwritten.

Keys are never baked into images or copied between agents (reference/fleet.md section 4: cloned
identity files make two agents one). So the key is created by the agent itself, where it runs,
the first time it needs one; ``camaudit fleet init`` at the centre never makes agent keys.

Public keys travel as one line of text, ``camaudit-ed25519 <base64 of the 32 raw bytes>``, and are
named by a short fingerprint (``ed25519:`` and 16 hex digits of their SHA-256).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ConfigError

PUBLIC_KEY_PREFIX = "camaudit-ed25519"
#: The longest key file read: a PEM Ed25519 key is 119 bytes; anything far larger is not one.
_MAX_KEY_FILE = 4096


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: ``ed25519:`` and 16 hex digits of its SHA-256."""
    return "ed25519:" + hashlib.sha256(_raw(public_key)).hexdigest()[:16]


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The one-line text form of a public key, as printed by agents and pasted into central.toml."""
    return f"{PUBLIC_KEY_PREFIX} {base64.b64encode(_raw(public_key)).decode()}"


def parse_public_key(text: str) -> Ed25519PublicKey:
    """Parse the one-line text form; ConfigError with the reason when it is not one."""
    parts = text.strip().split()
    if len(parts) < 2 or parts[0] != PUBLIC_KEY_PREFIX:
        raise ConfigError(f"not a camaudit public key (expected '{PUBLIC_KEY_PREFIX} BASE64')")
    try:
        raw = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("not a camaudit public key: the key is not valid base64") from None
    if len(raw) != 32:
        raise ConfigError(f"not a camaudit public key: an Ed25519 key has 32 bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        public_key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class AgentKey:
    """An agent's private key, where it lives, and whether this call created it."""

    private_key: Ed25519PrivateKey
    path: Path
    created: bool

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def public_text(self) -> str:
        return public_key_text(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def load_or_create_key(path: str | Path) -> AgentKey:
    """Load the key at ``path``, or create it there if there is none.

    Creation writes a temporary file (0600) and hard-links it into place, which fails if a key
    appeared meanwhile: an existing key is never overwritten, even by two agents starting at once.
    A key file that others may read is refused (like ssh), since anyone who reads it can sign
    bundles as this site.
    """
    key_path = Path(path)
    if not key_path.exists():
        _create(key_path)
        return AgentKey(_load(key_path), key_path, created=True)
    return AgentKey(_load(key_path), key_path, created=False)


def load_key(path: str | Path) -> AgentKey:
    """Load an existing key; ConfigError when there is none."""
    key_path = Path(path)
    if not key_path.exists():
        raise ConfigError(f"no agent key at {key_path}")
    return AgentKey(_load(key_path), key_path, created=False)


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _create(path: Path) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the directory for the agent key {path}: {exc.strerror}") from exc
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process made the key first: keep theirs, it is the one in use
    except OSError as exc:
        raise ConfigError(f"cannot write the agent key {path}: {exc.strerror}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def _load(path: Path) -> Ed25519PrivateKey:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the agent key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"the agent key {path} can be read by others: run chmod 600 {path}")
        if info.st_size > _MAX_KEY_FILE:
            raise ConfigError(f"{path} is not an agent key (too large)")
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the agent key {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ConfigError(f"{path} is not an agent key (not an unencrypted PEM private key)") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 key")
    return key
