"""The outcome of reading one device (:class:`InterrogationReport`). The settings type itself,
:class:`DeviceSettings`, crosses stages and lives in :mod:`camaudit.model.settings`; it is
re-exported here.

In DeviceSettings, ``None`` always means *not verified*: camaudit could not read it (no credentials, a 401, a 404,
a timeout). An empty list means the device was read and reported nothing (no gateway, say).
Never read "not verified" as "off" (reference/egress.md section 2.5). Each not-verified read
is a :class:`Reason`: a code (``auth_required``, ``not_found``, ``timed_out`` ...) with the read's
label (``what``), its stable name (``read``, e.g. ``isapi:EZVIZ``, which the verdict logic decides
on) and its port; the words are the report layer's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Observation
from ..model.settings import DeviceSettings

__all__ = ["DeviceSettings", "InterrogationReport"]


@dataclass(slots=True)
class InterrogationReport:
    """The outcome of reading one device: evidence, settings and what went wrong."""

    observations: list[Observation]
    settings: DeviceSettings
    problems: list[str] = field(default_factory=list)
