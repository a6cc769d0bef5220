"""Fixtures of the fleet tests: a real nats-server on loopback (see fleet_support.py)."""

from __future__ import annotations

from fleet_support import fleet

__all__ = ["fleet"]
