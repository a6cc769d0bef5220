"""Run a farm on its own event loop in a background thread, for callers that are not async
(the demo, tests, benchmarks): ``with LabThread(specs) as lab: ... lab.manifest ...``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from ..errors import ScanFailed
from .farm import Farm
from .plan import DeviceSpec


class LabThread:
    """Start a :class:`Farm` in a daemon thread; ``stop`` (or leaving the ``with``) tears it down."""

    def __init__(self, devices: Sequence[DeviceSpec], *, start_timeout: float = 60.0, **farm_options: Any) -> None:
        self.farm = Farm(devices, **farm_options)
        self.start_timeout = start_timeout
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="camaudit-lab", daemon=True)
        self.manifest: list[dict[str, Any]] = []

    def _run(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.farm.start()
                self.manifest = self.farm.manifest()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.farm.stop()

        asyncio.run(serve())

    def start(self) -> LabThread:
        self._thread.start()
        if not self._ready.wait(self.start_timeout):
            raise ScanFailed(f"the lab did not come up within {self.start_timeout:.0f} s")
        if self._error is not None:
            self._thread.join()
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            self._thread.join(30)

    def __enter__(self) -> LabThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
