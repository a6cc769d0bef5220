"""Identification: observations -> device identity (DESIGN.md section 4).

``identify(observations)`` is the engine API; signatures are read from signatures/*.yaml once per
process. See :mod:`.engine` for how evidence combines, :mod:`.signatures` for the file format.

The engine is imported on first use of ``identify`` or ``Engine`` (PEP 562), not with the
package: its import costs about 0.13 s, and a caller that only needs a leaf module such as
:mod:`.oui` (``camaudit discover`` naming a MAC's registrant) should not pay it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Engine, identify

__all__ = ["Engine", "identify"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import engine

        return getattr(engine, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
