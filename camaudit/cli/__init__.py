"""The ``camaudit`` command: a click group whose commands parse, call the library and print.

Each area's commands live in a module of this package (``scan.py``, ``lab.py``, ...); the
group imports them lazily so that ``camaudit --help`` stays fast. Library errors
(:class:`camaudit.errors.CamauditError`) become one clear line on stderr and the exit code the
contract names (DESIGN.md section 7); no traceback reaches a user.
"""

from __future__ import annotations

import atexit
import errno
import gc
import importlib
import logging
import sqlite3
import sys
from typing import Any

import click

from .. import __version__
from ..errors import CamauditError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: command name -> (module, attribute, one-line help shown in `camaudit --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "scan": ("scan", "scan", "Sweep, probe, identify and record the cameras in TARGETS."),
    "scans": ("scan", "scans", "List past scans in the store."),
    "show": ("scan", "show", "Show one scan, or what the store knows about one address."),
    "identify": ("identify", "identify", "Identify devices from JSON lines or nmap -sV XML (offline)."), "signatures": ("signatures", "signatures", "Verify, try and list the identification signatures."),  # noqa: E501
    "report": ("report", "report", "Write the report of a scan (HTML, Markdown, JSON, CSV) from the store."),
    "export": ("report", "export", "Export the device inventory, OCSF findings or Datasette metadata."),
    "assess": ("report", "assess", "Assess a scan afresh: a new, frozen assessment (reports show the latest)."),
    "diff": ("report", "diff", "What changed between two scans."),
    "import": ("imports", "import_group", "Record another tool's scan (nmap XML) as a camaudit scan."),
    "register": ("report", "register", "Import or list the declared asset register."),
    "schedule": ("report", "schedule", "Print systemd units or a crontab line for scheduled audits."),
    "discover": ("discover", "discover", "List what answers camera discovery (ONVIF, SADP, DHIP, ARP)."),
    "lab": ("lab", "lab", "Run an emulated camera network (demo, tests, benchmarks)."),
    "demo": ("demo", "demo", "Audit an emulated camera network on this machine and show the result."),
    "egress": ("egress", "egress", "Verify egress from a camera segment: check, listen, import-log, pcap."),
    "fleet": ("fleet", "fleet", "Many sites: init a fleet, trust agent keys, queue scans, show agent status."),
    "agent": ("fleet", "agent", "Run a site's agent: its jobs, its bundles to the centre (agent run)."),
    "central": ("fleet", "central", "Run the centre: merge the sites' bundles into the central store (central serve)."),
    "bundle": ("fleet", "bundle", "Export, import and verify signed evidence bundles (a site's runs)."),
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(f"{__name__}.{spec[0]}")
        command: click.Command = getattr(module, spec[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


#: Libraries that log every request at INFO (httpx) or configure logging on import (onvif):
#: kept at WARNING even with --verbose, since their debug output can carry authentication
#: digests (interrogation engineer's note) and drowns the user's view.
_QUIET_LOGGERS = ("httpx", "httpcore", "onvif", "zeep", "aiohttp", "scapy", "asyncio")


def configure_logging(verbose: int = 0) -> None:
    """Warnings and errors on stderr; -v adds camaudit's progress notes, -vv its debug."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("camaudit: %(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("camaudit").setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, prog_name="camaudit")
@click.option("--verbose", "-v", count=True, help="More detail on stderr (-v notes, -vv debug).")
def cli(verbose: int) -> None:
    """camaudit: find the IP cameras on internal networks, identify their makers (Hikvision,
    Dahua and their rebrands above all), verify whether they can reach the internet, and
    report it with the evidence.

    Exit codes: 0 done (no finding at or above --fail-on, when it is given); 1 findings at or
    above --fail-on; 2 usage, configuration or input error (a corrupt database included); 3 the
    run failed or was interrupted, or --max-age, --require-complete or --scan-id-from was not met.
    """
    configure_logging(verbose)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the group, turning camaudit errors into messages and exit codes."""
    configure_logging(0)  # before any command imports a library that configures logging itself
    # Registered first, so it runs last of the exit handlers: a scan ends with a large heap (the
    # ONVIF client's schema objects, every device's evidence), and the interpreter's last
    # collection walked it for about 0.2 s after the result was out (issue 15: a one-host scan
    # has 1.5 s). Frozen objects are left to the operating system, which frees them anyway.
    atexit.register(gc.freeze)
    try:
        code = cli.main(args=argv, prog_name="camaudit", standalone_mode=False)
        # Commands return their exit code (0 or 1, DESIGN.md section 7); None means 0.
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Abort:
        click.echo("camaudit: interrupted", err=True)
        sys.exit(3)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code in (1, 2) else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except CamauditError as exc:
        click.echo(f"camaudit: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("camaudit: interrupted", err=True)
        sys.exit(3)
    except BrokenPipeError:
        sys.exit(0)
    # Last resort: a fault no command turned into a CamauditError still gets one line and exit 3,
    # never a traceback (DESIGN.md section 7); -vv logs the traceback for a bug report.
    except sqlite3.Error as exc:
        logging.getLogger("camaudit").debug("database fault", exc_info=True)
        if "malformed" in str(exc) or "file is not a database" in str(exc):
            # A corrupt file is an input error (DESIGN.md section 7), found late.
            click.echo(f"camaudit: error: the database is damaged: {exc}", err=True)
            sys.exit(2)
        click.echo(f"camaudit: error: the database failed: {exc}", err=True)
        sys.exit(3)
    except OSError as exc:
        logging.getLogger("camaudit").debug("system fault", exc_info=True)
        reason = "the disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"camaudit: error: {reason}{where}", err=True)
        sys.exit(3)
    except Exception as exc:
        logging.getLogger("camaudit").debug("internal error", exc_info=True)
        click.echo(f"camaudit: internal error: {type(exc).__name__}: {exc} (run with -vv for details)", err=True)
        sys.exit(3)
