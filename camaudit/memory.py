"""Give the memory a long run has freed back to the system.

glibc's ``free()`` keeps freed memory in the process unless it lies at the top of the heap: a
scan that allocates and frees device responses, parsed documents and database pages for hour
after hour leaves free pages between live ones, and its resident size creeps up although what
it holds does not (issue 15: a 5,000-device scan held the same Python heap from its first to its
last host, 0.7 MB of resident memory more for every thousand hosts probed). ``malloc_trim(0)``
returns those pages (glibc 2.8 and later release whole free pages anywhere in the heap, not only
at its top); the scan calls it from its heartbeat thread. It costs about a millisecond.

Elsewhere (musl, macOS, Windows) there is nothing to call and :func:`release_free_memory` does
nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_free_memory() -> bool:
    """Return the pages this process has freed to the system; False where that cannot be done."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
