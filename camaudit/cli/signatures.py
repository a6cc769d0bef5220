"""``camaudit signatures verify|match|list``: tools for signature authors (STYLE.md, recog-style)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import InputError, UsageError
from .output import JSON_OPTION, print_json


@click.group("signatures")
def signatures() -> None:
    """Check, try and list the identification signatures (signatures/*.yaml)."""


@signatures.command("verify")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@JSON_OPTION
def verify(files: tuple[str, ...], as_json: bool) -> int:
    """Check signature files (all shipped files by default): schema, regexes and groups,
    vocabulary, lineage, and that every example matches as it says. Exit 0 when all pass,
    2 with one line per fault otherwise.

    Example:

        camaudit signatures verify signatures/http_server.yaml
    """
    from ..fingerprint.signatures import signature_files
    from ..fingerprint.verify import verify as run_verify

    paths = []
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"no such signature file: {name}")
        paths.append(path)
    faults = run_verify(paths)
    checked = len(paths) if paths else len(signature_files()) + 3
    if as_json:
        print_json({"files": checked, "ok": not faults,
                    "faults": [{"file": f.file, "signature": f.signature, "check": f.code, "message": f.message}
                               for f in faults]})
    else:
        for fault in faults:
            click.echo(str(fault))
        status = "all checks pass" if not faults else f"{len(faults)} fault(s)"
        click.echo(f"{checked} file(s) checked: {status}", err=bool(faults))
    return 2 if faults else 0


@signatures.command("match")
@click.argument("kind")
@click.argument("value", default="-")
@click.option("--why", is_flag=True,
              help="Explain every signature of the kind: matched, shadowed by an earlier one, or which "
                   "matcher failed on which part; and the normalised parts the signatures read.")
@click.option("--signature", "only", metavar="ID", help="With --why, only this signature's rows.")
def match(kind: str, value: str, why: bool, only: str | None) -> int:
    """Show which signatures match one observation VALUE (or '-' to read it from stdin).

    KIND is an observation kind (http_server, sadp, ...) or a signature file whose kind is used.
    Each match is printed as a JSON line: signature id, the kind it read, certainty, extraction.
    With --why, one JSON line per derived part and per signature says why it did or did not match.

    Example:

        echo 'App-webs/' | camaudit signatures match http_server - --why
    """
    from ..fingerprint.signatures import SignatureError, default_set, load
    from ..model import OBSERVATION_KINDS

    signature_set = default_set()
    if kind.endswith((".yaml", ".yml")):
        try:
            signature_set = load([Path(kind)])
        except SignatureError as exc:
            raise InputError(f"{kind}: {exc}") from exc
        kind = signature_set.signatures[0].kind if signature_set.signatures else kind
    if kind not in OBSERVATION_KINDS:
        raise UsageError(f"unknown observation kind {kind!r}; one of: {', '.join(sorted(OBSERVATION_KINDS))}")
    text = sys.stdin.read() if value == "-" else value
    if value == "-" and text.endswith("\n") and text.count("\n") == 1:
        text = text[:-1]  # `echo VALUE |` adds one newline that is not part of the value
    if why:
        from ..fingerprint.explain import explain

        rows = explain(signature_set, kind, text)
        if only is not None:
            if not any(s.id == only for s in signature_set.signatures):
                raise UsageError(f"no signature with id {only!r}; see `camaudit signatures list`")
            rows = [row for row in rows if row.get("id") == only]
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        if not any(row.get("outcome") == "matched" for row in rows):
            click.echo("no signature matched", err=True)
        return 0
    hits = signature_set.match_value(kind, text)
    for read_kind, signature, fields in hits:
        click.echo(json.dumps({"id": signature.id, "kind": read_kind, "certainty": signature.certainty,
                               "extract": fields}))
    if not hits:
        click.echo("no signature matched", err=True)
    return 0


@signatures.command("list")
@click.option("--kind", help="Only signatures of this observation kind.")
@JSON_OPTION
def list_(kind: str | None, as_json: bool) -> int:
    """List the shipped signatures: id, kind, what they name, certainty."""
    from ..fingerprint.signatures import default_set

    rows: list[dict[str, Any]] = []
    for signature in default_set().signatures:
        if kind and signature.kind != kind:
            continue
        constants = {k: v[0].constant for k, v in signature.extractors.items() if v and v[0].constant}
        rows.append({"id": signature.id, "kind": signature.kind, "vendor": constants.get("vendor"),
                     "brand": constants.get("brand"), "certainty": signature.certainty,
                     "description": signature.description})
    if as_json:
        print_json({"signatures": rows})
        return 0
    for row in rows:
        named = row["vendor"] or "-"
        if row["brand"]:
            named += f"/{row['brand']}"
        click.echo(f"{row['id']:<44} {row['kind']:<22} {named:<22} {row['certainty']:.2f}  {row['description']}")
    click.echo(f"{len(rows)} signature(s)", err=True)
    return 0


list_.name = "list"
