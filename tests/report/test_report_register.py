"""The asset register: reading CSV and YAML, clear errors, and reconciliation with a scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from camaudit.errors import InputError
from camaudit.register import Asset, FoundDevice, import_register, load_register, read_register, reconcile
from camaudit.resources import config_dir
from camaudit.store import open_store


def test_the_shipped_example_register_reads_without_warnings() -> None:
    path = Path(str(config_dir() / "register.example.csv"))
    assets, warnings = read_register(path)
    assert len(assets) >= 3 and warnings == []
    assert {a.declared_maker for a in assets} >= {"Hikvision", "Lorex"}


def test_spreadsheet_csv_with_semicolons_bom_and_header_aliases(tmp_path: Path) -> None:
    path = tmp_path / "cameras.csv"
    path.write_bytes("\ufeffAsset ID;IP address;MAC address;Serial number;Manufacturer;Model;Location;Notes\n"
                     "C-1;10.0.0.5;AA-BB-CC-DD-EE-FF;ABC123;Hikvision;DS-2CD2032;Hal;spare\n".encode())  # fmt: skip
    (asset,), warnings = read_register(path)
    assert asset == Asset("C-1", "10.0.0.5", "aa:bb:cc:dd:ee:ff", "ABC123", "Hikvision", None, "DS-2CD2032", "Hal")
    assert any("Notes" in w for w in warnings), "an unknown column is named, not silently dropped"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("asset_id,address\nC-1,10.0.0.300\n", "row 2: '10.0.0.300' is not an IP address"),
        ("asset_id,mac\nC-1,zz:zz\n", "row 2: 'zz:zz' is not a MAC address"),
        ("asset_id,address\n,10.0.0.1\n", "row 2: the asset id is empty"),
        ("asset_id,address\nC-1,10.0.0.1\nC-1,10.0.0.2\n", "asset id 'C-1' appears twice"),
        ("address,mac\n10.0.0.1,\n", "asset_id column"),
        ("", "the register is empty"),
    ],
)
def test_a_bad_register_gets_a_message_naming_the_row(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_register(path)


def test_yaml_register_errors_name_the_line(tmp_path: Path) -> None:
    good = tmp_path / "reg.yaml"
    good.write_text("assets:\n  - asset_id: C-1\n    address: 10.0.0.1\n    maker: Dahua\n")
    (asset,), _ = read_register(good)
    assert asset.declared_maker == "Dahua"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- asset_id: C-1\n  address: 10.0.0.1\n- asset_id: C-2\n  address: not-an-ip\n")
    with pytest.raises(InputError, match=r"bad.yaml, line 3: 'not-an-ip' is not an IP address"):
        read_register(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("- asset_id: C-1\n  address: [10.0.0.1\n")
    with pytest.raises(InputError, match=r"broken.yaml, line \d+: not valid YAML"):
        read_register(broken)


def test_import_replaces_the_register_unless_merge(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text("asset_id,address\nA,10.0.0.1\nB,10.0.0.2\n")
    second.write_text("asset_id,address\nC,10.0.0.3\nA,10.0.0.9\n")
    with open_store(tmp_path / "db.sqlite") as store:
        import_register(store, first)
        import_register(store, second, merge=True)
        assert {(a.asset_id, a.address) for a in load_register(store)} == {("A", "10.0.0.9"), ("B", "10.0.0.2"), ("C", "10.0.0.3")}
        import_register(store, first)
        assert [a.asset_id for a in load_register(store)] == ["A", "B"]


def test_reconciliation_pairs_by_serial_before_address() -> None:
    # The camera registered as R-1 moved to .20; a different camera now sits at R-1's address.
    assets = [Asset("R-1", address="10.0.0.10", serial="SER1", declared_maker="Hikvision"),
              Asset("R-2", address="10.0.0.11", declared_maker="Lorex"),
              Asset("R-3", mac="00:40:8c:00:00:01", declared_maker="Axis"),
              Asset("R-4", address="10.0.0.99", declared_maker="Hanwha"),
              Asset("R-5", address="10.0.0.30", serial="SER5")]  # fmt: skip
    devices = [FoundDevice("10.0.0.10", "serial:SER2", serial="SER2", vendor="hikvision"),
               FoundDevice("10.0.0.20", "serial:SER1", serial="ser1", vendor="hikvision"),
               FoundDevice("10.0.0.11", "addr:10.0.0.11", vendor="dahua", brand="lorex"),
               FoundDevice("10.0.0.12", "mac:00:40:8c:00:00:01", mac="00:40:8c:00:00:01", vendor="axis"),
               FoundDevice("10.0.0.50", "addr:10.0.0.50"),
               FoundDevice("10.0.0.30", "serial:SER6", serial="SER6", vendor="dahua")]  # fmt: skip
    result = {(r.status, r.asset.asset_id if r.asset else None, r.device.address if r.device else None): r for r in reconcile(devices, assets)}
    assert set(result) == {
        ("matched", "R-1", "10.0.0.20"),
        ("unregistered", None, "10.0.0.10"),
        ("matched", "R-2", "10.0.0.11"),
        ("matched", "R-3", "10.0.0.12"),
        ("missing", "R-4", None),
        ("unregistered", None, "10.0.0.30"),
        ("missing", "R-5", None),
    }, "the unidentified host at .50 is not called an unregistered camera"
    assert result[("matched", "R-1", "10.0.0.20")].matched_by == "serial"
    assert result[("unregistered", None, "10.0.0.10")].detail == "", "R-1 was found elsewhere by its serial"
    assert "registered to R-5 (serial SER5), but the device found there reports serial SER6" in result[("unregistered", None, "10.0.0.30")].detail
    lorex = result[("matched", "R-2", "10.0.0.11")]
    assert lorex.maker_mismatch and lorex.detail == "declared maker Lorex, identified maker dahua (sold as lorex)"
    assert not result[("matched", "R-3", "10.0.0.12")].maker_mismatch


def test_legal_names_are_not_mismatches() -> None:
    asset = Asset("R-1", address="10.0.0.1", declared_maker="Hangzhou Hikvision Digital Technology Co., Ltd.", declared_brand="EZVIZ")
    (row,) = reconcile([FoundDevice("10.0.0.1", "x", vendor="hikvision", brand="ezviz")], [asset])
    assert row.status == "matched" and not row.maker_mismatch
