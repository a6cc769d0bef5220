"""The console's table of a scan's hosts is printed a block at a time (issue 15): a scan of
thousands of hosts is never laid out whole in memory, and the blocks still read as one table."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from camaudit.cli import scan as scan_cli
from camaudit.model import Host, Identity

HOSTS = 600  # three blocks: two full ones and a part


def hosts(count: int) -> Iterator[Host]:
    for n in range(count):
        vendor = ("hikvision", "dahua", "axis")[n % 3]
        yield Host(f"127.78.{n // 250}.{n % 250 + 1}", ports=[80, 554] if n % 2 else [80],
                   identity=Identity(vendor=vendor, model=f"MODEL-{n % 7}" * (1 + n % 2),
                                     firmware="V5.4.5 build 170124", confidence=0.9))


def test_every_host_is_one_row_of_blocks_that_line_up(monkeypatch: pytest.MonkeyPatch) -> None:
    rows_per_table: list[int] = []
    add_row = Table.add_row

    def counting(self: Table, *cells: Any, **kwargs: Any) -> None:
        if self.row_count == 0:
            rows_per_table.append(0)
        rows_per_table[-1] += 1
        add_row(self, *cells, **kwargs)

    monkeypatch.setattr(Table, "add_row", counting)
    out = io.StringIO()
    console = Console(file=out, width=200)
    vendors = scan_cli.print_hosts_table(console, "scan x (complete)", hosts(HOSTS), egress=False)
    assert rows_per_table == [256, 256, 88], "never more than one block of rows laid out at once"
    assert vendors == {"hikvision": 200, "dahua": 200, "axis": 200}
    lines = out.getvalue().splitlines()
    assert sum("address" in line and "vendor" in line for line in lines) == 1, "one header"
    assert "egress" not in lines[1]
    rows = [line for line in lines if line.startswith("127.78.")]
    assert [line.split()[0] for line in rows] == [h.address for h in hosts(HOSTS)]
    # The columns line up across the blocks: each maker starts where the header's "vendor" does.
    column = lines[1].index("vendor")
    assert all(line[column:].split()[0] in ("hikvision", "dahua", "axis") for line in rows)


def test_no_host_gives_the_header_and_a_verdict_gives_the_egress_column() -> None:
    out = io.StringIO()
    assert scan_cli.print_hosts_table(Console(file=out, width=200), "scan x", [], egress=False) == {}
    assert "address" in out.getvalue() and "egress" not in out.getvalue()
    out = io.StringIO()
    host = Host("127.78.9.1", ports=[80], verdict={"verdict": "CLOSED"})
    scan_cli.print_hosts_table(Console(file=out, width=200), "scan x", [host], egress=False)
    assert "egress" in out.getvalue() and "CLOSED" in out.getvalue()
