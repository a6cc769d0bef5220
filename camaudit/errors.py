"""camaudit's exceptions. Every error a user can cause descends from one root.

    CamauditError                  anything camaudit reports to a user; exit code in `.exit_code`
    ├── UsageError                 bad input from the user (exit 2)
    │   ├── ScopeError             targets that cannot be parsed, are refused, or are too many
    │   ├── ConfigError            a configuration or policy file that cannot be used
    │   │   └── FleetAuthError     the NATS server refused a fleet principal's credentials
    │   └── InputError             an input file (observations, nmap XML, register) that cannot be read
    │       └── BundleRefused      an evidence bundle that is not a bundle, unsigned, untrusted or altered
    ├── StoreError                 the database cannot be opened, migrated or written (exit 3)
    │   └── DamagedStore           the file is not a camaudit database, or is corrupt (an input error: exit 2)
    ├── OutputError                a report or export cannot be written for want of room (exit 3)
    ├── DependencyError            an optional tool (nmap, root privileges) is missing (exit 2)
    ├── FleetUnavailable           the fleet's NATS server cannot be reached, or stopped answering (exit 3)
    └── ScanFailed                 the run itself failed (exit 3)

The CLI maps each to a one-line message and its exit code; it never shows a traceback for these.
"""

from __future__ import annotations


class CamauditError(Exception):
    """Root of every error camaudit raises on purpose."""

    exit_code = 3


class UsageError(CamauditError):
    """The user asked for something camaudit cannot do as asked."""

    exit_code = 2


class ScopeError(UsageError):
    """Targets that cannot be parsed, are refused by policy, or exceed the host cap."""


class ConfigError(UsageError):
    """A configuration, policy or signature file that cannot be used."""


class InputError(UsageError):
    """An input file that cannot be read or parsed."""


class FleetAuthError(ConfigError):
    """The NATS server refused the credentials in a fleet file (wrong or revoked password)."""


class BundleRefused(InputError):
    """An evidence bundle refused by verification. ``code`` names the reason for scripts:
    ``not_a_bundle``, ``too_large``, ``unknown_schema``, ``unsigned``, ``untrusted_key``,
    ``altered``, ``unknown_site``."""

    def __init__(self, code: str, message: str) -> None:
        # Said in one line, whatever it quotes: SQLite's errors about a hostile bundle quote its
        # own bytes, newlines included (found by the fuzz campaign).
        super().__init__(" ".join(message.split()))
        self.code = code


class DependencyError(UsageError):
    """An external tool or privilege that the requested feature needs is missing."""


class StoreError(CamauditError):
    """The evidence store cannot be opened, migrated or written."""

    exit_code = 3


class DamagedStore(StoreError):
    """The file named as the store is not a camaudit database, or is corrupt: the user named the
    wrong file or must restore a backup, an input error like any unreadable input (DESIGN.md
    section 7: exit 2), not a failure of the run."""

    exit_code = 2


class OutputError(CamauditError):
    """A report or export could not be written: the disk is full or failing."""

    exit_code = 3


class FleetUnavailable(CamauditError):
    """The fleet's NATS server cannot be reached (refused, timed out, name unknown)."""

    exit_code = 3


class ScanFailed(CamauditError):
    """The run itself failed."""

    exit_code = 3
