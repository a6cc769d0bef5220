"""Shared test fixtures and guards.

Network safety: tests send packets only to loopback (127.0.0.0/8, ::1) or into network namespaces
that the test itself created. Tests marked ``root`` need root (namespaces, raw sockets) and skip
with the reason otherwise.
"""

from __future__ import annotations

import os
import resource

import pytest
from hypothesis import HealthCheck, Phase, settings

# Property tests (tests/fuzz/). "ci": a bounded, reproducible run (derandomize: the same examples
# every run, so a red CI is a real finding, not luck); no shrinking, so a known defect that hangs
# costs one time bound, not minutes of shrink attempts. "long": the by-hand campaign (fuzz/run.py):
# random, shrinking, many examples. The deadline is generous for a loaded 2-core machine; hangs are
# caught by tests/fuzz/fuzzkit.py's per-call time bound, not by the deadline.
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=10_000,  # generous: the per-call time_bound guards hangs; CI machines are loaded
    derandomize=True,
    database=None,
    print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
settings.register_profile(
    "long",
    max_examples=5000,
    deadline=10_000,
    derandomize=False,
    database=None,
    print_blob=True,
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large),
)
settings.load_profile(os.environ.get("CAMAUDIT_HYPOTHESIS_PROFILE", "ci"))

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
