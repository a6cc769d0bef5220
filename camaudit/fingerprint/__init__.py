"""Identification: observations -> device identity (DESIGN.md section 4).

``identify(observations)`` is the engine API; signatures are read from signatures/*.yaml once per
process. See :mod:`.engine` for how evidence combines, :mod:`.signatures` for the file format.
"""

from __future__ import annotations

from .engine import Engine, identify

__all__ = ["Engine", "identify"]
