"""Advisories, lineage and the covered list: data files with examples, tested like signatures."""

from __future__ import annotations

import datetime as dt

import pytest

from camaudit.fingerprint.advisories import (
    advisories,
    advisories_for,
    check_examples,
    parse_build_date,
    parse_platform,
    parse_version,
)
from camaudit.fingerprint.lineage import covered, lineage, loose
from camaudit.fingerprint.verify import verify_advisories_file, verify_covered_file, verify_lineage_file
from camaudit.resources import signatures_dir


def test_data_files_verify_clean() -> None:
    base = signatures_dir()
    assert verify_lineage_file(base / "lineage.yaml") == []
    assert verify_covered_file(base / "covered.yaml") == []
    assert verify_advisories_file(base / "advisories.yaml") == []


def test_advisory_examples_hold() -> None:
    assert check_examples(list(advisories())) == []
    assert {a.id for a in advisories()} >= {"CVE-2017-7921", "CVE-2021-36260", "CVE-2021-33044",
                                             "CVE-2021-33045", "CVE-2022-30563"}


@pytest.mark.parametrize(("text", "expected"), [
    ("V5.6.2build 190701", (5, 6, 2, 190701)),
    ("V5.7.18 build 240826", (5, 7, 18, 240826)),
    ("V4.62.210 build 230619", (4, 62, 210, 230619)),
    ("V5.5.800", (5, 5, 800, None)),
    ("firmware", None),
])
def test_hikvision_versions(text: str, expected: object) -> None:
    assert parse_version(text) == expected


def test_dahua_build_dates_and_platform_names() -> None:
    assert parse_build_date("2.800.0000016.0.R,build:2020-06-05") == dt.date(2020, 6, 5)
    assert parse_build_date("2.420.AC00.15.R,build:2016-09-08") == dt.date(2016, 9, 8)
    assert parse_build_date("2.800.0000000.13.R") is None
    assert parse_build_date("build:2020-13-45") is None
    assert parse_platform("IPCK_E6_EN_STD_5.5.100_200226") == ("IPC_E6", (5, 5, 100, 200226))


def test_conservative_claims() -> None:
    # Boundary version without its build: not claimed.
    assert "CVE-2017-7921" not in advisories_for("hikvision", "DS-2CD2032F-I", "V5.4.0")
    # ... while the CVE-2021-36260 heuristic (below V5.5.800) does not need the build.
    assert advisories_for("hikvision", "DS-2CD2032F-I", "V5.4.0") == ["CVE-2021-36260"]
    # Right range, wrong maker or no model: not claimed.
    assert advisories_for("dahua", "DS-2CD2532F-IWS", "V5.2.0 build 140721") == []
    assert advisories_for("hikvision", None, "V5.2.0 build 140721") == []
    assert advisories_for("hikvision", "DS-2CD2532F-IWS", "V5.2.0 build 140721") == ["CVE-2017-7921"]
    # A Dahua version without a build date says nothing about build-date advisories.
    assert advisories_for("dahua", "IPC-HDW3441T-ZS", "2.800.0000000.13.R") == []
    assert advisories_for("dahua", "IPC-HDW3441T-ZS", "2.800.0000016.0.R,build:2020-06-05") == [
        "CVE-2021-33044"]


def test_lineage_names_compare_loosely() -> None:
    assert loose("ZHEJIANG DAHUA TECHNOLOGYCO.,LTD") != loose("Shanghai Dahua Scale Factory")
    assert lineage().resolve("CP_PLUS").name == "cp-plus"
    assert lineage().resolve("Lorex Technology Inc.").maker == "dahua"
    assert lineage().resolve("Private") is None
    assert lineage().resolve("Swann").maker is None


def test_covered_list() -> None:
    data = covered()
    assert data.is_covered("hikvision") and data.is_covered("dahua") and data.is_covered("hytera")
    assert data.is_covered("unknown", "ezviz")
    assert not data.is_covered("uniview") and not data.is_covered("axis")
    assert not data.is_covered("unknown", "lorex")
    assert data.parent("ezviz") == "hikvision"
