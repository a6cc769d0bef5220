"""camaudit: audit the IP cameras on an organisation's internal networks.

Library first: ``camaudit.audit.run_scan`` drives a scan; the ``camaudit`` command is a thin
client of the library.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
