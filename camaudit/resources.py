"""Locate the data that ships beside the code: signatures/ and config/.

In a wheel they are mapped into ``camaudit/_data/`` (pyproject ``force-include``); in a source
checkout or an editable install they sit at the repository root. Both are read through
``importlib.resources`` so that zipped installs work too.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_CHECKOUT_ROOT = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Traversable:
    """Return the shipped data folder ``name`` (``"signatures"`` or ``"config"``)."""
    packaged = resources.files("camaudit") / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = _CHECKOUT_ROOT / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"camaudit data folder {name!r} is missing from this installation")


def signatures_dir() -> Traversable:
    return data_dir("signatures")


def config_dir() -> Traversable:
    return data_dir("config")
