"""The same TCP connect sweep as :mod:`camaudit.discovery.tcp`, run by nmap (``nmap -sT``).

nmap is started by us (so that a stop can end it at once) with targets in a temporary file
(``-iL``) and XML written to a temporary file; the XML is parsed with python-nmap's parser
(``PortScanner.analyse_nmap_xml_scan``). With ``-v`` nmap prints ``Discovered open port ...``
as it finds each one: those lines drive ``on_open`` while the scan runs, and a stopped scan
keeps them as its partial result. The final XML is authoritative for a complete scan.

How :class:`~camaudit.config.SweepConfig` maps to nmap (always ``-sT -Pn -n -T4 --open``):

=================  =====================================================================
``ports``          ``-p`` with the same list
``concurrency``    ``--max-parallelism`` (nmap's cap on probes in flight)
``rate``           ``--max-rate`` (new probes per second); 0 passes nothing (no cap)
``connect_timeout````--max-rtt-timeout``, with ``--initial-rtt-timeout`` and
                   ``--min-rtt-timeout`` lowered to it when -T4's defaults (500 / 100 ms)
                   are longer
``per_host``       not mapped: nmap has no per-host connection cap (a note says so)
=================  =====================================================================

``--host-timeout`` is deliberately not set: nmap drops a host that hits it from the results
altogether, ports it already found open included, which would make the two engines disagree
silently. IPv4 and IPv6 targets run as two nmap invocations (nmap needs ``-6`` for the latter).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import SweepConfig
from ..errors import DependencyError, ScanFailed
from .sweep import OnOpen, Progress, SweepResult, check_sweep_config, normalise_addresses

__all__ = ["SweepResult", "nmap_sweep", "nmap_command"]

INSTALL_HINT = (
    "install nmap (Debian/Ubuntu: 'sudo apt install nmap'; Fedora: 'sudo dnf install nmap'; "
    "macOS: 'brew install nmap') or use the built-in engine (--engine builtin)"
)
_DISCOVERED = re.compile(r"^Discovered open port (\d+)/tcp on (\S+)")
_PERCENT = re.compile(r"About ([0-9.]+)% done")
_STOP_GRACE_SECONDS = 0.5


def require_nmap() -> tuple[Any, str]:
    """Return (a python-nmap PortScanner, the nmap path) or raise DependencyError."""
    try:
        import nmap as python_nmap
    except ImportError:
        raise DependencyError(
            "the nmap engine needs the python-nmap package: 'pip install python-nmap'"
        ) from None
    path = shutil.which("nmap")
    if path is None:
        raise DependencyError(f"the nmap engine needs the nmap program, which is not installed: {INSTALL_HINT}")
    try:
        scanner = python_nmap.PortScanner(nmap_search_path=(path,))
    except python_nmap.PortScannerError as exc:
        raise DependencyError(f"nmap at {path} does not work ({exc}): {INSTALL_HINT}") from None
    return scanner, path


def nmap_command(nmap_path: str, config: SweepConfig, targets_file: str, xml_file: str, *, ipv6: bool) -> list[str]:
    """The nmap argument list for one sweep (see the module docstring for the mapping)."""
    timeout_ms = max(1, round(config.connect_timeout * 1000))
    cmd = [
        nmap_path, "-sT", "-Pn", "-n", "-T4", "--open", "-v", "--stats-every", "1s",
        "-p", ",".join(str(p) for p in dict.fromkeys(config.ports)),
        "--max-parallelism", str(config.concurrency),
        "--max-rtt-timeout", f"{timeout_ms}ms",
        "--initial-rtt-timeout", f"{min(timeout_ms, 500)}ms",
        "--min-rtt-timeout", f"{min(timeout_ms, 100)}ms",
    ]  # fmt: skip
    if config.rate:
        cmd += ["--max-rate", f"{config.rate:g}"]
    if ipv6:
        cmd.append("-6")
    cmd += ["-iL", targets_file, "-oX", xml_file]
    # setpriv kills nmap if this process dies without cleaning up (PR_SET_PDEATHSIG).
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        cmd = [setpriv, "--pdeathsig", "KILL", "--", *cmd]
    return cmd


def _open_ports_from_xml(scanner: Any, xml_text: str) -> dict[str, set[int]]:
    result = scanner.analyse_nmap_xml_scan(nmap_xml_output=xml_text)
    found: dict[str, set[int]] = {}
    for host, info in result.get("scan", {}).items():
        address = str(ipaddress.ip_address(info.get("addresses", {}).get("ipv6") or host))
        for port, detail in info.get("tcp", {}).items():
            if detail.get("state") == "open":
                found.setdefault(address, set()).add(int(port))
    return found


def _run_nmap(
    scanner: Any,
    command: list[str],
    xml_file: str,
    on_found: Callable[[str, int], None],
    on_percent: Callable[[float], None],
    stop: threading.Event | None,
) -> tuple[dict[str, set[int]] | None, list[str]]:
    """Run one nmap; return (open ports from its XML or None if stopped, warnings)."""
    warnings: list[str] = []
    stderr_tail: list[str] = []
    proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    buffers = {proc.stdout.fileno(): b"", proc.stderr.fileno(): b""}
    stopped_at = 0.0
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            sel.register(proc.stderr, selectors.EVENT_READ)
            while sel.get_map():
                if stop is not None and stop.is_set() and not stopped_at:
                    stopped_at = time.monotonic()
                    proc.terminate()
                elif stopped_at and time.monotonic() - stopped_at > _STOP_GRACE_SECONDS:
                    proc.kill()  # nmap ignored SIGTERM: the stop must still be prompt
                    break
                for key, _ in sel.select(timeout=0.1):
                    fd = key.fd
                    chunk = os.read(fd, 65536)
                    if not chunk:
                        sel.unregister(key.fileobj)
                        lines = [buffers[fd]] if buffers[fd] else []
                        buffers[fd] = b""
                    else:
                        *lines, buffers[fd] = (buffers[fd] + chunk).split(b"\n")
                    for raw in lines:
                        line = raw.decode("utf-8", "replace").strip()
                        if fd == proc.stdout.fileno():
                            match = _DISCOVERED.match(line)
                            if match:
                                with contextlib.suppress(ValueError):
                                    on_found(str(ipaddress.ip_address(match[2])), int(match[1]))
                            percent = _PERCENT.search(line)
                            if percent:
                                on_percent(float(percent[1]))
                        elif line:
                            stderr_tail = (stderr_tail + [line])[-5:]
                            if line.startswith("WARNING") and len(warnings) < 3:
                                warnings.append(f"nmap: {line}")
        if not stopped_at:
            proc.wait()  # both pipes are at EOF: nmap is exiting
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    if stopped_at:
        return None, warnings
    if proc.returncode != 0:
        detail = stderr_tail[-1] if stderr_tail else "no message"
        raise ScanFailed(f"nmap failed (exit code {proc.returncode}): {detail}")
    try:
        xml_text = Path(xml_file).read_text(encoding="utf-8", errors="replace")
        return _open_ports_from_xml(scanner, xml_text), warnings
    except Exception as exc:  # python-nmap raises bare PortScannerError/ParseError variants
        raise ScanFailed(f"cannot read nmap's XML output: {exc}") from exc


def nmap_sweep(
    addresses: Sequence[str],
    config: SweepConfig,
    *,
    on_open: OnOpen | None = None,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
) -> SweepResult:
    """Sweep like :func:`camaudit.discovery.tcp.sweep`, with ``nmap -sT``; same contract.

    ``progress`` is coarse (nmap's own percentage, about once a second). ``probes`` is the
    number nmap was asked for (addresses x ports), as nmap does not report its attempts.
    Raises DependencyError with an install hint when nmap or python-nmap is missing.
    """
    check_sweep_config(config)
    targets = normalise_addresses(addresses)
    scanner, nmap_path = require_nmap()
    started = time.monotonic()
    nports = len(set(config.ports))
    total = len(targets) * nports
    notes = ["nmap has no per-host connection cap: per_host was not applied (rate and concurrency were)"]
    found: dict[str, set[int]] = {}
    last_progress = [0.0]
    done_before = [0]
    interrupted = False

    def on_found(address: str, port: int) -> None:
        ports = found.setdefault(address, set())
        if port not in ports:
            ports.add(port)
            if on_open is not None:
                on_open(address, port)

    groups = [
        (False, [a for a in targets if ":" not in a]),
        (True, [a for a in targets if ":" in a]),
    ]
    with tempfile.TemporaryDirectory(prefix="camaudit-nmap-") as tmp:
        for ipv6, group in groups:
            if not group:
                continue
            if stop is not None and stop.is_set():
                interrupted = True
                break
            group_total = len(group) * nports

            def on_percent(percent: float, group_total: int = group_total) -> None:
                now = time.monotonic()
                if progress is not None and now - last_progress[0] >= 0.1:
                    last_progress[0] = now
                    progress(done_before[0] + int(group_total * min(percent, 100.0) / 100), total)

            targets_file = str(Path(tmp) / ("targets6.txt" if ipv6 else "targets4.txt"))
            xml_file = str(Path(tmp) / ("out6.xml" if ipv6 else "out4.xml"))
            Path(targets_file).write_text("\n".join(group) + "\n", encoding="ascii")
            command = nmap_command(nmap_path, config, targets_file, xml_file, ipv6=ipv6)
            final, warnings = _run_nmap(scanner, command, xml_file, on_found, on_percent, stop)
            notes.extend(warnings)
            if final is None:
                interrupted = True
                break
            for address, ports in final.items():
                for port in sorted(ports):
                    on_found(address, port)
            done_before[0] += group_total

    if interrupted:
        notes.append(
            "the sweep was stopped early: only the open ports nmap had reported so far are kept"
        )
    probes = total if not interrupted else done_before[0]
    if progress is not None:
        progress(probes, total)
    return SweepResult(
        open_ports={address: sorted(ports) for address, ports in found.items() if ports},
        addresses=len(targets),
        probes=probes,
        elapsed=time.monotonic() - started,
        notes=notes,
        interrupted=interrupted,
    )
