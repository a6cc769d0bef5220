"""Build signatures/corpus.json: camaudit's own identification corpus, every sample with its provenance.

Three real sources only (issue 14 item 6); nothing here writes a banner of its own:

* ``tests``: the device captures of tests/data/captures (devices.jsonl and the discovery replies),
  whose values the reference quotes from real devices (their README names each source);
* ``lab``: what ``camaudit scan`` records from each loopback lab profile; the profiles serve the
  corpus samples and reference facts they cite (camaudit/lab/profiles, placeholders named there);
* ``nmap``: nmap's own service-probe data (/usr/share/nmap/nmap-service-probes): the match lines
  whose pattern is a literal string (no wildcard), and the literal ``Server:`` and
  ``WWW-Authenticate:`` header lines inside other match lines. The truth is the maker that nmap's
  product field names (signatures/lineage.yaml makers), else "other".

Run from the repository root: ``PYTHONPATH=$PWD python tests/data/make_corpus.py``. Sends packets
only to the loopback lab it starts (127.91.15.0/24).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "signatures" / "corpus.json"
NMAP_PROBES = Path("/usr/share/nmap/nmap-service-probes")
NMAP_KINDS = {"http": ("http_headers", "http_server", "http_www_authenticate"),
              "rtsp": ("rtsp_response", "rtsp_server", "rtsp_www_authenticate")}
_MATCH = re.compile(r"^(match|softmatch) (\S+) m(.)(.*?)\3([si]*)(?: (.*))?$")
_ESCAPES = {"r": "\r", "n": "\n", "t": "\t", "0": "\0"}


def _unescape(pattern: str) -> str | None:
    """The literal text a regex fragment stands for, or None when it holds any regex operator."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", pattern[i + 2 : i + 4]):
                out.append(chr(int(pattern[i + 2 : i + 4], 16)))
                i += 4
            elif nxt and not nxt.isalnum():
                out.append(nxt)
                i += 2
            else:
                return None
        elif ch in ".()[]{}|?*+^$":
            return None
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _nmap_samples() -> list[dict[str, Any]]:
    sys.path.insert(0, str(ROOT))
    from camaudit.fingerprint.lineage import lineage

    names = lineage()
    if not NMAP_PROBES.is_file():
        return []
    version = "unknown"
    samples: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for number, line in enumerate(NMAP_PROBES.read_text(encoding="latin-1").splitlines(), 1):
        if line.startswith("# $Id:"):
            version = line.strip("# ")
        found = _MATCH.match(line)
        if not found or found.group(2) not in NMAP_KINDS or "i" in found.group(5):
            continue
        info = found.group(6) or ""
        product = re.search(r"p/([^/]*)/", info)
        device = re.search(r"d/([^/]*)/", info)
        product_text = product.group(1) if product else ""
        named = names.find_in(product_text)
        camera_like = bool(device and device.group(1) in ("webcam", "security-misc")) or bool(
            re.search(r"(?i)camera|\bdvr\b|\bnvr\b|ipcam|webcam|video", product_text))
        if not camera_like and named is None:
            continue
        # the maker nmap's product names, directly or through a brand whose lineage is not inferred
        truth = "other"
        if named is not None and named.maker and (named.relation == "maker" or "inferred" not in named.relation):
            truth = named.maker
        whole_kind, server_kind, auth_kind = NMAP_KINDS[found.group(2)]
        pattern = found.group(4)
        candidates: list[tuple[str, str, bool]] = []
        literal = _unescape(pattern[1:].removesuffix("$")) if pattern.startswith("^") else None
        if literal is not None and len(literal) >= 12 and literal.startswith(("HTTP/", "RTSP/")):
            candidates.append((whole_kind, literal, False))
        for fragment in pattern.split(r"\r\n"):
            text = _unescape(fragment.lstrip("^"))
            if text is None:
                continue
            header = re.match(r"(?i)(Server|WWW-Authenticate): ?(.+)$", text)
            if header:
                kind = server_kind if header.group(1).lower() == "server" else auth_kind
                candidates.append((kind, header.group(2), True))
        for kind, value, fragment in candidates:
            if (kind, value) in seen:
                continue
            seen.add((kind, value))
            samples.append({
                "id": f"nmap-{number}-{kind}",
                "vendor": truth,
                "brand": named.name if named is not None and named.relation != "maker" else None,
                "observations": [{"kind": kind, "value": value, "port": None}],
                "provenance": "nmap",
                "source": f"nmap-service-probes line {number} ({version}); product {product_text!r}",
                "nmap_line": number,
                # one header of a longer match: it may be too little to name the maker, but must
                # never name another covered maker
                "fragment": fragment,
            })
    return samples


def _tests_samples() -> list[dict[str, Any]]:
    samples = []
    captures = ROOT / "tests" / "data" / "captures"
    for line in (captures / "devices.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        device = json.loads(line)
        vendor = device["expect"].get("vendor", "unknown")
        samples.append({
            "id": f"tests-{device['id']}",
            "vendor": "other" if vendor == "unknown" else vendor,
            "brand": device["expect"].get("brand"),
            "observations": [{"kind": o["kind"], "value": o["value"], "port": o.get("port")}
                             for o in device["observations"]],
            "provenance": "tests",
            "source": f"tests/data/captures/devices.jsonl {device['id']}: {device['source']}",
        })
    discovery = captures / "discovery"
    for name, kind, vendor, brand in (("sadp_hikvision.xml", "sadp", "hikvision", None),
                                      ("sadp_ezviz.xml", "sadp", "hikvision", "ezviz"),
                                      ("dhip_dahua.json", "dhip", "dahua", None),
                                      ("wsd_hikvision.xml", "onvif_probe_match", "hikvision", None),
                                      ("wsd_dahua.xml", "onvif_probe_match", "dahua", None),
                                      ("wsd_ipycam.xml", "onvif_probe_match", "other", None)):
        text = (discovery / name).read_text(encoding="utf-8")
        text = text.replace("{{ADDRESS}}", "127.0.0.1").replace("{{RELATES_TO}}", "urn:uuid:0").replace(
            "{{MESSAGE_ID}}", "urn:uuid:1")
        samples.append({
            "id": f"tests-discovery-{name.rsplit('.', 1)[0].replace('_', '-')}",
            "vendor": vendor, "brand": brand,
            "observations": [{"kind": kind, "value": text, "port": None}],
            "provenance": "tests",
            "source": f"tests/data/captures/discovery/{name} (provenance in that folder's README.md)",
        })
    return samples


def _lab_samples() -> list[dict[str, Any]]:
    from camaudit.lab import plan_devices
    from camaudit.lab.profiles import load_profiles
    from camaudit.lab.runner import LabThread

    profiles = load_profiles()
    ids = sorted(p for p in profiles if not p.startswith("_"))
    specs = plan_devices(len(ids), subnet="127.91.15.0/24", mix=",".join(f"{p}=1" for p in ids), seed=5)
    samples = []
    with tempfile.TemporaryDirectory() as tmp, LabThread(specs) as running:
        lab = running.manifest
        ports = sorted({p for entry in lab for p in entry["ports"]["tcp"]})
        done = subprocess.run(
            [sys.executable, "-m", "camaudit", "scan", *(e["address"] for e in lab), "--db", f"{tmp}/c.db",
             "--json", "--ports", ",".join(map(str, ports)), "--fail-on", "none"],
            capture_output=True, text=True, timeout=600, check=True,
        )
    hosts = {h["address"]: h for h in json.loads(done.stdout)["hosts"]}
    for entry in sorted(lab, key=lambda e: e["profile"]):
        profile = profiles[entry["profile"]]
        observations = [o for o in hosts[entry["address"]]["observations"] if o["kind"] != "open_port"]
        if not observations:
            continue
        samples.append({
            "id": f"lab-{profile.id}",
            "vendor": profile.vendor if profile.vendor not in ("unknown",) else "other",
            "brand": profile.brand,
            "observations": observations,
            "provenance": "lab",
            "source": (f"camaudit scan of lab profile {profile.id} on loopback; the profile cites corpus "
                       f"{', '.join(profile.cites_corpus) or '-'} and reference {'; '.join(profile.cites_reference)}"),
            "placeholders": list(profile.placeholders),
        })
    return samples


def main() -> None:
    samples = _tests_samples() + _lab_samples() + _nmap_samples()
    doc = {
        "_meta": {
            "description": "camaudit's own identification corpus (issue 14 item 6); built by tests/data/make_corpus.py",
            "provenance": {
                "tests": "tests/data/captures: values the reference quotes from real devices (see its README)",
                "lab": "camaudit lab profiles served on loopback; each profile cites its real-world samples",
                "nmap": "nmap-service-probes literal match strings and literal header lines, truth from nmap's product field",
            },
            "truth": "vendor is the maker (lineage.yaml) or 'other'; brand when the sample names one",
        },
        "samples": samples,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(samples)} samples written to {OUT}")


if __name__ == "__main__":
    main()
