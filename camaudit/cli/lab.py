"""``camaudit lab``: run an emulated camera network.

``lab up`` in loopback mode needs no root: every device is a 127.x address. The namespace mode
(``--netns``) is added by camaudit.lab.netns; ``up`` dispatches on it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys
import time

import click

from ..errors import UsageError
from ..lab.farm import Farm, serve_until_signalled
from ..lab.plan import BEHAVIOURS, parse_mix, plan_devices


def _parse_misbehave(text: str | None) -> dict[str, int]:
    if not text:
        return {}
    counts: dict[str, int] = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        if name not in BEHAVIOURS or not value.isdigit():
            raise UsageError(f"bad --misbehave entry {part!r}: use NAME=COUNT with NAME one of {', '.join(BEHAVIOURS)}")
        counts[name] = int(value)
    return counts


def up_loopback(count: int, subnet: str, mix: str | None, seed: int, manifest: str | None,
                misbehave: str | None, port_offset: int | None) -> int:
    """Serve the lab on loopback addresses until SIGINT/SIGTERM."""
    try:
        network = ipaddress.IPv4Network(subnet, strict=False)
    except ValueError:
        raise UsageError(f"{subnet!r} is not an IPv4 subnet (example: 127.77.0.0/16)") from None
    if not network.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
        raise UsageError(f"loopback mode serves only 127.0.0.0/8 subnets, not {subnet}")
    specs = plan_devices(count, subnet, parse_mix(mix), seed, misbehaving=_parse_misbehave(misbehave))
    farm = Farm(specs, port_offset=port_offset)

    started = time.monotonic()

    def announce() -> None:
        where = f"; manifest {manifest}" if manifest else ""
        offset = f"; ports below 1024 moved up by {farm.port_offset}" if farm.port_offset else ""
        click.echo(f"camaudit lab: {len(specs)} devices up on {subnet} in "
                   f"{time.monotonic() - started:.2f} s{offset}{where}. Ctrl-C stops it.")
        sys.stdout.flush()

    asyncio.run(serve_until_signalled(farm, manifest, announce))
    click.echo("camaudit lab: stopped, every socket released.", err=True)
    return 0


@click.group("lab")
def lab() -> None:
    """Run an emulated camera network (for the demo, tests and benchmarks)."""


@lab.command("up")
@click.option("--devices", "count", type=click.IntRange(1, 65000), default=40, show_default=True,
              help="How many devices.")
@click.option("--subnet", default="127.77.0.0/16", show_default=True, help="Where the devices live.")
@click.option("--mix", default=None, help="Weights by vendor, group or profile, e.g. hikvision=30,dahua=30,axis=5.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same lab.")
@click.option("--manifest", type=click.Path(dir_okay=False), default=None,
              help="Write the JSON manifest here once every device is up.")
@click.option("--misbehave", default=None,
              help=f"Add misbehaving devices, e.g. slow=1,reset=1 ({', '.join(BEHAVIOURS)}).")
@click.option("--port-offset", type=int, default=None,
              help="Added to ports below 1024 (default: 0 when allowed, else 10000).")
@click.option("--netns", is_flag=True,
              help="Root: a bridged segment in network namespaces (own MACs, real ARP and multicast) "
                   "on 10.77.0.0/16, with a scanner namespace for `lab exec`.")
@click.option("--scenario", default=None, metavar="NAME",
              help="With --netns: add a router and an 'internet' namespace in this egress scenario "
                   "(closed, open, dns-recursion-only, udp-8800-only, ipv6-only, upnp-mapping).")
def up(count: int, subnet: str, mix: str | None, seed: int, manifest: str | None,
       misbehave: str | None, port_offset: int | None, netns: bool = False,
       scenario: str | None = None) -> int:
    """Serve an emulated camera network until Ctrl-C.

    Example: camaudit lab up --devices 100 --mix hikvision=40,dahua=40,axis=20 --manifest lab.json
    """
    if netns:
        return up_netns(count, mix, seed, manifest, misbehave, scenario)
    if scenario is not None:
        raise UsageError("--scenario needs --netns (egress scenarios live in network namespaces)")
    return up_loopback(count, subnet, mix, seed, manifest, misbehave, port_offset)


def up_netns(count: int, mix: str | None, seed: int, manifest: str | None,
             misbehave: str | None, scenario: str | None) -> int:
    """Serve the lab in network namespaces until SIGINT/SIGTERM (camaudit/lab/netns.py)."""
    from ..lab import netns as labns
    from ..lab import scenarios as labsc
    from ..lab.farm import write_json_atomic

    labns.require_root()
    if count > labns.MAX_DEVICES:
        raise UsageError(f"--netns serves at most {labns.MAX_DEVICES} devices (lab.md 2.4)")
    specs = plan_devices(count, str(labns.CAMERA_SUBNET), parse_mix(mix), seed,
                         misbehaving=_parse_misbehave(misbehave))

    # From here a ^C or SIGTERM only sets a flag, checked once the lab is up: no moment where
    # a signal could leave namespaces behind.
    stop = labns.catch_stop_signals()
    started = time.monotonic()
    topo = labsc.start_netns_lab([s.to_json() for s in specs], scenario=scenario)
    try:
        if manifest:
            ready = topo.run_dir / "farm.ready"
            write_json_atomic(manifest, json.loads(ready.read_text(encoding="utf-8")))
        extra = f", scenario {scenario}" if scenario else ""
        where = f"; manifest {manifest}" if manifest else ""
        click.echo(f"camaudit lab: {len(specs)} devices up in namespaces on {labns.CAMERA_SUBNET} in "
                   f"{time.monotonic() - started:.2f} s (run {topo.run_id}{extra}; state "
                   f"{topo.state_file}{where}). `camaudit lab exec -- CMD` runs CMD in the scanner "
                   "namespace. Ctrl-C stops it.")
        if scenario:
            info = topo.extra["scenario"]["info"]
            click.echo(f"listener address to use: {info['listener']} (resolver {info['resolver']}, DNS zone "
                       f"{info['dns_zone']}); a documentation address, the lab's stand-in for the internet, so "
                       "verdicts carry the qualifier listener_test_range. As the README says:")
            for what, command in labsc.lab_egress_commands(info, topo.run_id):
                click.echo(f"  {what + ':':<9} {command}")
        sys.stdout.flush()
    except BaseException:
        labns.teardown(topo)
        raise
    labns.serve_until_signalled(topo, stop=stop)
    click.echo("camaudit lab: stopped; its namespaces and processes are gone.", err=True)
    return 0


@lab.command("exec", context_settings={"ignore_unknown_options": True,
                                       "allow_interspersed_args": False})
@click.option("--run-id", default=None, help="Which running namespace lab (when several run).")
@click.option("--in", "role", default="scan", show_default=True,
              type=click.Choice(["scan", "cams", "rtr", "inet", "lab"]),
              help="Which lab namespace: the scanner, the devices, the router or the internet.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED, required=True)
def exec_(run_id: str | None, role: str, command: tuple[str, ...]) -> int:
    """Run COMMAND inside the running namespace lab (root; default: the scanner namespace).

    Example: camaudit lab exec -- camaudit discover 10.77.0.0/24
    """
    from ..lab import netns as labns

    return labns.exec_in_lab(list(command), run_id=run_id, role=role)


@lab.command("down")
@click.option("--run-id", default=None, help="Which running namespace lab (when several run).")
@click.option("--all", "everything", is_flag=True,
              help="Instead remove everything crashed namespace labs left (namespaces, processes).")
def down(run_id: str | None, everything: bool) -> int:
    """Stop the running namespace lab, or with --all clean up after crashed ones (root)."""
    from ..lab import netns as labns

    if everything:
        labns.require_root()
        removed = labns.cleanup_stale()
        click.echo(f"camaudit lab: removed {len(removed)} leftover namespaces"
                   + (f": {', '.join(removed)}" if removed else "."))
        return 0
    click.echo(f"camaudit lab: run {labns.stop_lab(run_id)} stopped.")
    return 0
