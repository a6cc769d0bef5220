"""``camaudit identify``: offline identification, JSON lines in, JSON lines out (DESIGN.md section 4)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from ..errors import InputError, UsageError


@click.command("identify")
@click.argument("source", required=False, metavar="FILE|-")
@click.option("--nmap-xml", "nmap_xml", type=click.Path(dir_okay=False), metavar="FILE",
              help="Read nmap -sV XML instead; one output line per host, id = its address.")
def identify(source: str | None, nmap_xml: str | None) -> int:
    """Identify devices from evidence gathered elsewhere.

    Each input line is {"id": ..., "observations": [{"kind", "value", "port"}, ...]}; each
    output line gives vendor, brand, device_type, model, firmware, serial, confidence,
    covered, advisories and signatures, in input order. A line that cannot be read gets
    {"id": ..., "error": ...} and the rest go on.

    Example:

        echo '{"id": "cam1", "observations": [{"kind": "http_server", "value": "App-webs/"}]}' \\
          | camaudit identify -
    """
    from ..fingerprint import offline

    if nmap_xml and source:
        raise UsageError("give either FILE|- or --nmap-xml FILE, not both")
    if nmap_xml:
        from ..fingerprint.nmap_xml import parse_file

        _emit(offline.identify_nmap_hosts(parse_file(nmap_xml)))
        return 0
    if not source:
        raise UsageError("give a JSON lines FILE, '-' for standard input, or --nmap-xml FILE")
    if source == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise InputError("standard input is not open for reading")
        _emit(offline.identify_stream(stdin))
        return 0
    try:
        with open(source, "rb") as handle:
            _emit(offline.identify_stream(handle))
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from exc
    return 0


def _emit(records: Any) -> None:
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    for record in records:
        line = json.dumps(record, ensure_ascii=False)
        try:
            line.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            # A lone surrogate from a "\udXXX" escape in the input, or a character the output
            # encoding lacks (PYTHONIOENCODING=ascii): escaped output is the same JSON.
            line = json.dumps(record)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
