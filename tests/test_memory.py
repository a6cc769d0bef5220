"""The scan gives the memory it freed back to the system (camaudit.memory, issue 15)."""

from __future__ import annotations

import ctypes.util
import gc
import platform
from pathlib import Path

import pytest

from camaudit.memory import release_free_memory


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc" or ctypes.util.find_library("c") is None,
                    reason="malloc_trim is glibc's: elsewhere there is nothing to give back")
def test_freed_pages_between_live_ones_go_back_to_the_system() -> None:
    # 40 MB in blocks of 2,000 bytes (past pymalloc, so glibc's), every 32nd kept: the freed
    # blocks lie between live ones, where free() keeps them in the process.
    blocks = [bytearray(2000) for _ in range(20_000)]
    kept = blocks[::32]
    del blocks
    gc.collect()
    before = resident_mb()
    assert release_free_memory() is True
    after = resident_mb()
    assert len(kept) == 625
    assert before - after > 20, f"resident {before:.1f} MB before, {after:.1f} MB after"



def test_each_heartbeat_of_a_scan_gives_freed_memory_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from camaudit import audit
    from camaudit.store import open_store

    calls: list[float] = []

    def counted() -> bool:
        calls.append(time.monotonic())
        return True

    monkeypatch.setattr(audit, "release_free_memory", counted)
    db = tmp_path / "beats.db"
    with open_store(db) as store:
        scan_id = store.start_scan(targets=["127.93.9.1"])
    with audit._Heartbeat(str(db), scan_id, interval=0.05, stale_after=10.0):
        time.sleep(0.5)
    assert len(calls) >= 3
