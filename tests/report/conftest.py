"""Fixtures for the report tests: lab databases written through the store (report_lab.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_lab import LabDb, build_lab_db


@pytest.fixture(scope="module")
def lab_db(tmp_path_factory: pytest.TempPathFactory) -> LabDb:
    """Two scans, a register and verdicts. Module-scoped: tests must not change it (copy it)."""
    return build_lab_db(tmp_path_factory.mktemp("lab") / "lab.db")


@pytest.fixture()
def fresh_lab_db(tmp_path: Path) -> LabDb:
    return build_lab_db(tmp_path / "lab.db")
