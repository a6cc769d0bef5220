"""Listeners on loopback addresses for tests and benchmarks: bare TCP listeners for the sweep
(each port accepts and closes at once, drained by one thread; no protocol is spoken, the device
farm does that), and camaudit's own egress listener as a child process (:func:`egress_listener`)."""

from __future__ import annotations

import contextlib
import ipaddress
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path


class Listeners:
    """Open ports on loopback addresses; ``open`` maps each address to its sorted ports."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.open: dict[str, list[int]] = {}
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="lab-listeners", daemon=True)
        self._thread.start()

    def listen(self, address: str, port: int) -> None:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"lab listeners bind loopback addresses only, not {address}")
        s = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(128)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sockets.append(s)
        ports = self.open.setdefault(address, [])
        ports.append(port)
        ports.sort()
        self._sel.register(s, selectors.EVENT_READ)

    @property
    def count(self) -> int:
        return sum(len(p) for p in self.open.values())

    def _drain(self) -> None:
        while not self._stop.is_set():
            if not self._sel.get_map():
                time.sleep(0.02)
                continue
            for key, _ in self._sel.select(timeout=0.05):
                try:
                    conn, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    conn.close()
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for s in self.sockets:
            s.close()
        self._sel.close()

    def __enter__(self) -> Listeners:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def egress_listener(command: Sequence[str], bind: str, folder: Path, *options: str, ready_within: float = 30.0,
                    env: Mapping[str, str] | None = None) -> Iterator[Path]:
    """``camaudit egress listen --bind BIND OPTIONS`` as a child process (``command`` is how to
    start camaudit), from its ready file until the block ends; yields the listener's log file.
    For tests and the demo store on loopback: ``bind`` must be a loopback address."""
    if not ipaddress.ip_address(bind).is_loopback:
        raise ValueError(f"a lab egress listener binds a loopback address only, not {bind}")
    log, ready = folder / "seen.jsonl", folder / "ready"
    proc = subprocess.Popen([*command, "egress", "listen", "--bind", bind, *options, "--log", str(log),
                             "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=None if env is None else dict(env))
    try:
        deadline = time.monotonic() + ready_within
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                why = proc.stderr.read().decode(errors="replace").strip() if proc.poll() is not None and proc.stderr else ""
                raise RuntimeError(f"the egress listener on {bind} did not start within {ready_within:g} s: {why}")
            time.sleep(0.05)
        yield log
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
