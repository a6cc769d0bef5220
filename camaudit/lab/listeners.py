"""Bare TCP listeners on loopback addresses, for sweep tests and the sweep benchmark: each port
accepts and closes at once, drained by one thread. No protocol is spoken (the device farm does
that); a sweep only needs the handshake."""

from __future__ import annotations

import ipaddress
import selectors
import socket
import threading
import time


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
