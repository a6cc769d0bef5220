"""MAC registrants are read from netaddr's registry files without loading netaddr's whole
in-memory index (about 11 MB resident for a handful of lookups; issue 15), and say the same."""

from __future__ import annotations

import random
import subprocess
import sys

import netaddr
from netaddr.eui import ieee

from camaudit.fingerprint.oui import registrant


def test_a_lookup_does_not_load_netaddrs_index() -> None:
    code = ("import sys; from camaudit.fingerprint.oui import registrant; "
            "print(registrant('44:19:b6')); print('netaddr.eui.ieee' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    org, index_loaded = done.stdout.split("\n")[:2]
    assert "hikvision" in org.lower()
    assert index_loaded == "False"


def test_the_registrant_is_netaddrs_for_every_kind_of_prefix() -> None:
    rng = random.Random(15)
    keys = [*rng.sample(sorted(ieee.OUI_INDEX), 500), 0x4419B6, 0xBCBAC2, 0x3CEF8C, 0xFFFFFE, 0x000000]
    for key in keys:
        text = f"{key:06X}"
        dashed = f"{text[:2]}-{text[2:4]}-{text[4:]}"
        try:
            entry = netaddr.OUI(dashed)
            expected = (str(entry.registration(0).org).strip() or None) if entry.reg_count >= 1 else None
        except netaddr.NotRegisteredError:
            expected = None
        assert registrant(dashed.replace("-", ":").lower()) == expected, dashed


def test_nonsense_prefixes_have_no_registrant() -> None:
    for prefix in ("", "44:19", "zz:zz:zz", "44:19:b"):
        assert registrant(prefix) is None
