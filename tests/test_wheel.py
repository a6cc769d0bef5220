"""The built wheel carries signatures/, config/ and the lab profiles, and works from a fresh
virtual environment: the failure this catches is "works in the checkout, missing from the wheel".
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("hatchling", reason="building the wheel offline needs hatchling installed")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True, timeout=300, capture_output=True,
    )
    [built] = out.glob("camaudit-*.whl")
    return built


def test_wheel_contains_the_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "camaudit/_data/config/camaudit.toml",
        "camaudit/_data/signatures/http_server.yaml",
        "camaudit/_data/signatures/lineage.yaml",
        "camaudit/_data/signatures/covered.yaml",
        "camaudit/_data/signatures/advisories.yaml",
        "camaudit/py.typed",
    ):
        assert expected in names, expected
    assert any(n.startswith("camaudit/lab/profiles/") and n.endswith(".yaml") for n in names)


def test_wheel_works_from_a_fresh_virtual_environment(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, timeout=300)
    # The dependencies come from this environment's site-packages (a .pth line is a plain path:
    # the editable install of the checkout there is not activated), camaudit from the wheel.
    fresh_site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    Path(fresh_site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run(
        [str(python), "-c", "import camaudit; print(camaudit.__file__)"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    ).stdout.strip()
    assert where.startswith(str(venv)), where
    verify = subprocess.run(
        [str(venv / "bin" / "camaudit"), "signatures", "verify"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    config = subprocess.run(
        [str(python), "-c", "from camaudit.resources import config_dir; print((config_dir() / 'camaudit.toml').read_text()[:40])"],
        check=True, capture_output=True, text=True, cwd=tmp_path, env=env,
    )
    assert "camaudit" in config.stdout
