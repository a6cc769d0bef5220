"""``camaudit demo``: a whole audit of an emulated camera network, in about a minute."""

from __future__ import annotations

import logging
import sys

import click

from ..lab.demo import run_demo


def _progress(stage: str, done: int, total: int) -> None:
    if sys.stderr.isatty():
        click.echo(f"\r  {stage}: {done}/{total or '?'}   ", err=True, nl=False)


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Where camaudit-demo.db (and the HTML report) go.")
@click.option("--devices", type=click.IntRange(1, 1000), default=40, show_default=True,
              help="How many emulated devices.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same lab.")
@click.option("--subnet", default="127.77.0.0/16", show_default=True, hidden=True)
def demo(out_dir: str, devices: int, seed: int, subnet: str) -> int:
    """Start an emulated camera network on loopback, audit it, and show what was found.

    Nothing leaves this machine: the devices are 127.x addresses served by camaudit itself.
    """
    logging.basicConfig(level=logging.WARNING, format="camaudit: %(message)s")
    click.echo(f"camaudit demo: starting {devices} emulated devices on {subnet} ...", err=True)
    result = run_demo(out_dir, devices=devices, seed=seed, subnet=subnet, progress=_progress)
    if sys.stderr.isatty():
        click.echo("", err=True)
    click.echo(f"Emulated {result.devices} devices; scan {result.scan_status} in {result.seconds:.1f} s.")
    click.echo("In the lab, by vendor (brand):")
    for label, n in result.lab_vendors.most_common():
        click.echo(f"  {n:4d}  {label}")
    click.echo(f"Found {result.hosts_found} hosts with {result.open_ports} open ports.")
    if result.identities_available:
        click.echo("Identified, by vendor (brand):")
        for label, n in result.identified_vendors.most_common():
            click.echo(f"  {n:4d}  {label}")
    for note in result.notes:
        click.echo(f"Note: {note}")
    click.echo(f"Evidence store: {result.db_path.resolve()}")
    if result.html_path is not None:
        click.echo(f"Report:         {result.html_path.resolve()}")
    return 0
