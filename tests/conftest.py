"""Shared test fixtures and guards.

Network safety: tests send packets only to loopback (127.0.0.0/8, ::1) or into network namespaces
that the test itself created. Tests marked ``root`` need root (namespaces, raw sockets) and skip
with the reason otherwise.
"""

from __future__ import annotations

import os
import resource

import pytest

IS_ROOT = os.geteuid() == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip_root = pytest.mark.skip(reason="needs root for network namespaces or raw sockets")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip_root)


@pytest.fixture(scope="session", autouse=True)
def _raise_open_file_limit() -> None:
    """Loopback farms open thousands of sockets (lab.md section 6): lift the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(target, 65536), hard))
