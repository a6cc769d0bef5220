"""camaudit's camera lab: emulated camera networks for the demo, the tests and the benchmarks.

- :mod:`camaudit.lab.profiles`: device profiles as data, each citing its sources.
- :func:`plan_devices`: a deterministic lab plan (addresses, MACs, serials, settings).
- :class:`camaudit.lab.farm.Farm`: serves the planned devices from one asyncio process.

The planner (and the profiles it loads) is imported on first use (PEP 562): every multicast and
ARP sender imports :mod:`camaudit.lab.netns` for its guard, and should not pay for the profiles.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .plan import BEHAVIOURS, DeviceSpec, parse_mix, plan_devices

__all__ = ["BEHAVIOURS", "DeviceSpec", "parse_mix", "plan_devices"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import plan

        return getattr(plan, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
