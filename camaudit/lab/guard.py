"""The lab guard: is this thread inside a lab network namespace (``clab-*``)?

Apart from :mod:`camaudit.lab.netns` (which builds the lab) so that every multicast and ARP
sender, which asks this before its first packet when ``CAMAUDIT_REQUIRE_LAB_NETNS=1``, pays for
a few ``stat`` calls and not for the lab builder's imports (issue 15: the ARP sweep of a /24 is
a 0.3 s process). :mod:`camaudit.lab.netns` re-exports every name here.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError

#: Every lab namespace name starts with this (lab.md 0.1); the guard accepts any of them.
LAB_PREFIX = "clab-"
NETNS_DIR = Path("/run/netns")
#: Environment variable: when set to 1, :func:`check_sender_allowed` enforces the guard.
GUARD_ENV = "CAMAUDIT_REQUIRE_LAB_NETNS"


class LabNamespaceError(UsageError):
    """A lab-only sender was asked to send from outside a lab namespace."""


def _ns_key(path: str | Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def current_lab_namespace() -> str | None:
    """The name of the ``clab-*`` namespace this thread runs in, or None.

    Uses /proc/thread-self: a network namespace is per thread, and a thread may have setns()ed.
    """
    mine = _ns_key("/proc/thread-self/ns/net") or _ns_key("/proc/self/ns/net")
    if mine is None:
        return None
    try:
        entries = sorted(NETNS_DIR.iterdir())
    except OSError:
        return None
    for entry in entries:
        if entry.name.startswith(LAB_PREFIX) and _ns_key(entry) == mine:
            return entry.name
    return None


def assert_in_lab_namespace() -> str:
    """Refuse unless this thread is inside a lab namespace; return that namespace's name.

    A positive check: "am I in the root namespace?" cannot be asked (/proc/1/ns/net is EACCES
    even for root in containers), so ask "am I in one of /run/netns/clab-*?" instead.
    """
    name = current_lab_namespace()
    if name is None:
        raise LabNamespaceError(
            "refusing to send: this process is not inside a lab network namespace (clab-*); "
            "run it with `camaudit lab exec -- ...`"
        )
    return name


def guard_required() -> bool:
    """True when the environment asks every multicast/ARP sender to stay inside the lab."""
    return os.environ.get(GUARD_ENV, "") == "1"


def check_sender_allowed() -> None:
    """For camaudit's multicast and ARP senders: enforce the guard when :data:`GUARD_ENV` is
    set (the lab's ``exec`` and the test suite set it); a no-op otherwise (real audits)."""
    if guard_required():
        assert_in_lab_namespace()
