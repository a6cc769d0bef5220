"""``camaudit discover``: who answers the camera discovery protocols, fast, without probing.

A thin client of :func:`camaudit.discovery.runner.discover`: parse the targets, run, print a
table (or one JSON document with ``--json``). The details shown (model, firmware, serial) are
read back from the observations with the same pure parsers the driver used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click

from ..discovery.arp import oui_organisation
from ..discovery.runner import DiscoveryResult
from ..discovery.runner import discover as run_discover
from ..model import Observation
from ..scope import DEFAULT_MAX_HOSTS, build_scope
from . import CONTEXT_SETTINGS

_ANSWER = {"onvif_probe_match": "onvif", "sadp": "sadp", "dhip": "dhip"}


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("targets", nargs=-1, required=True)
@click.option(
    "--interface",
    "-i",
    "interfaces",
    multiple=True,
    metavar="IF",
    help="Multicast (and ARP) on this interface; repeat for several. "
    "Default: the interfaces whose network holds a target.",
)
@click.option(
    "--multicast/--no-multicast",
    default=True,
    show_default=True,
    help="Also probe by multicast on the chosen interfaces (unicast to every target always).",
)
@click.option("--arp", is_flag=True, help="ARP-sweep targets on attached segments (needs root).")
@click.option(
    "--arp-only",
    is_flag=True,
    help="Only the ARP sweep (needs root): no WS-Discovery, SADP or DHIP. It ends when every "
    "target answered, or shortly after the last request (at most --timeout, capped at 2 s).",
)
@click.option(
    "--timeout", type=float, default=2.0, show_default=True,
    help="Seconds to listen after sending (unicast only: less once every target answered, and the answers "
    "settled, or refused every protocol: nothing listens there)."
)
@click.option(
    "--rate", type=float, default=2000.0, show_default=True, help="Datagrams per second, at most."
)
@click.option("--exclude", multiple=True, metavar="TARGET", help="Addresses or networks to skip.")
@click.option("--allow-public", is_flag=True, help="Allow public (internet) addresses as targets.")
@click.option(
    "--max-hosts", type=int, default=DEFAULT_MAX_HOSTS, show_default=True, help="Refuse larger scopes."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
def discover(
    targets: Sequence[str],
    interfaces: Sequence[str],
    multicast: bool,
    arp: bool,
    arp_only: bool,
    timeout: float,
    rate: float,
    exclude: Sequence[str],
    allow_public: bool,
    max_hosts: int,
    as_json: bool,
) -> int:
    """Run camera discovery alone (WS-Discovery, Hikvision SADP, Dahua DHIP, optionally ARP)
    against TARGETS and list what answered. Nothing else is probed.

    TARGETS are addresses, CIDR networks, ranges (10.0.0.1-50) or @file lists.

    Example:

        camaudit discover 10.20.0.0/24 --arp --json

        camaudit discover 10.20.0.0/24 --arp-only
    """
    scope = build_scope(targets, exclude=exclude, allow_public=allow_public, max_hosts=max_hosts)
    addresses = scope.addresses()
    if sys.stderr.isatty() and not as_json:
        click.echo(f"camaudit: discovering {len(addresses):,} addresses ...", err=True)
    result = asyncio.run(
        run_discover(
            addresses,
            interfaces=interfaces,
            multicast=multicast,
            arp=arp or arp_only,
            timeout=timeout,
            rate=rate,
            udp=not arp_only,
        )
    )
    result.notes[:0] = scope.notes  # about the scope itself (CGNAT space), before the run's own
    devices = summarise(result.observations, result.problems)
    if as_json:
        click.echo(json.dumps(_document(scope.targets, len(addresses), result, devices), indent=2))
        return 0
    _print_table(devices)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for address, problems in result.problems.items():
        for problem in problems:
            click.echo(f"problem: {address}: {problem}", err=True)
    return 0


def summarise(
    observations: Sequence[Observation], problems: Mapping[str, Sequence[str]] | None = None
) -> list[dict[str, Any]]:
    """One entry per answering address: MAC, OUI registrant, which protocols answered, and the
    model, firmware, serial and name the replies carry; ``problems`` (what could not be kept
    from an address, e.g. a capped flood) when there are any."""
    by_address: dict[str, list[Observation]] = {}
    for obs in observations:
        by_address.setdefault(obs.address, []).append(obs)
    devices = []
    for address in sorted(by_address, key=_address_key):
        obs_list = by_address[address]
        entry: dict[str, Any] = {
            "address": address,
            "mac": None,
            "oui": None,
            "answered": [],
            "model": None,
            "firmware": None,
            "serial": None,
            "name": None,
        }
        for obs in obs_list:
            if obs.kind == "mac" and entry["mac"] is None:
                entry["mac"] = obs.value
            if obs.kind == "mac" and obs.source.endswith("arp") and "arp" not in entry["answered"]:
                entry["answered"].append("arp")
            answer = _ANSWER.get(obs.kind)
            if answer and answer not in entry["answered"]:
                entry["answered"].append(answer)
            _details(obs, entry)
        if entry["mac"]:
            entry["oui"] = oui_organisation(entry["mac"])
        entry["observations"] = [
            {**o.brief(), "source": o.source, "observed_at": o.observed_at} for o in obs_list
        ]
        if problems and problems.get(address):
            entry["problems"] = list(problems[address])
        devices.append(entry)
    return devices


def _address_key(address: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(address)
    return (ip.version, int(ip))


def _details(obs: Observation, entry: dict[str, Any]) -> None:
    if obs.kind not in _ANSWER:
        return  # a MAC or a port: nothing to read back (and no parser to import for an ARP sweep)
    from ..protocols import dhip, sadp, wsd

    found: dict[str, str | None] = {}
    if obs.kind == "sadp":
        s = sadp.parse_reply(obs.value.encode("utf-8"), obs.address, obs.observed_at)
        if s is not None:
            found = {"model": s.model, "firmware": s.firmware, "serial": s.serial}
    elif obs.kind == "dhip":
        d = dhip.parse_body(obs.value, obs.address, obs.observed_at)
        if d is not None:
            found = {"model": d.model, "firmware": d.firmware, "serial": d.serial}
    elif obs.kind == "onvif_probe_match":
        w = wsd.parse_reply(obs.value.encode("utf-8"), obs.address, obs.observed_at)
        if w is not None and w.camera_matches:
            match = w.camera_matches[0]
            found = {"model": match.hardware, "name": match.name}
    for key, value in found.items():
        if value and not entry.get(key):
            entry[key] = value


def _document(
    targets: Sequence[str], count: int, result: DiscoveryResult, devices: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "targets": list(targets),
        "addresses": count,
        "answered": len(devices),
        "notes": result.notes,
        "devices": devices,
    }


def _print_table(devices: list[dict[str, Any]]) -> None:
    if not devices:
        click.echo("No device answered.")
        return
    headers = ["ADDRESS", "MAC", "OUI", "ANSWERED", "MODEL", "FIRMWARE", "SERIAL"]
    rows = [
        [
            d["address"],
            d["mac"] or "-",
            (d["oui"] or "-")[:32],
            ",".join(d["answered"]) or "-",
            d["model"] or d["name"] or "-",
            d["firmware"] or "-",
            d["serial"] or "-",
        ]
        for d in devices
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
