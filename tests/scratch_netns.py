"""A network namespace of a test's own, wired to nothing (the brief's network safety rule):
created with its loopback up and the test's own `ip` setup inside it, deleted on the way out."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest


@contextmanager
def scratch_namespace(tag: str, *setup: Sequence[str]) -> Iterator[str]:
    """Yield the name of a fresh namespace ``camaudit-<tag>-<pid>``: lo up, then each of
    ``setup`` run as ``ip -n NS <args>``. Skips the test when iproute2 is missing."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (ip) is not installed")
    ns = f"camaudit-{tag}-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for args in (["link", "set", "lo", "up"], *setup):
            subprocess.run(["ip", "-n", ns, *args], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def python_in(ns: str, script: str, *, timeout: float = 60, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` with this Python inside the namespace ``ns``."""
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", script],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)
