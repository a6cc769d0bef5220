"""camaudit's exceptions. Every error a user can cause descends from one root.

    CamauditError                  anything camaudit reports to a user; exit code in `.exit_code`
    ├── UsageError                 bad input from the user (exit 2)
    │   ├── ScopeError             targets that cannot be parsed, are refused, or are too many
    │   ├── ConfigError            a configuration or policy file that cannot be used
    │   └── InputError             an input file (observations, nmap XML, register) that cannot be read
    ├── StoreError                 the database cannot be opened, migrated or written (exit 3)
    ├── OutputError                a report or export cannot be written for want of room (exit 3)
    ├── DependencyError            an optional tool (nmap, root privileges) is missing (exit 2)
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


class DependencyError(UsageError):
    """An external tool or privilege that the requested feature needs is missing."""


class StoreError(CamauditError):
    """The evidence store cannot be opened, migrated or written."""

    exit_code = 3


class OutputError(CamauditError):
    """A report or export could not be written: the disk is full or failing."""

    exit_code = 3


class ScanFailed(CamauditError):
    """The run itself failed."""

    exit_code = 3
