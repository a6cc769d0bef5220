"""camaudit's camera lab: emulated camera networks for the demo, the tests and the benchmarks.

- :mod:`camaudit.lab.profiles`: device profiles as data, each citing its sources.
- :func:`plan_devices`: a deterministic lab plan (addresses, MACs, serials, settings).
- :class:`camaudit.lab.farm.Farm`: serves the planned devices from one asyncio process.
"""

from __future__ import annotations

from .plan import BEHAVIOURS, DeviceSpec, parse_mix, plan_devices

__all__ = ["BEHAVIOURS", "DeviceSpec", "parse_mix", "plan_devices"]
