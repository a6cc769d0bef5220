"""The library's entry point: ``run_scan(config) -> ScanResult`` drives the stages of
DESIGN.md section 1 and writes each one to the store as it goes.

scope -> sweep -> discover -> probe -> interrogate -> identify -> store

Interruption (Ctrl-C, SIGTERM, or the caller's ``stop`` event) ends the current stage promptly;
what was found is already in the store and the scan is marked ``interrupted``. Either way the
scan ends in :func:`finalise_scan`: identification and assessment run on whatever evidence the
scan stored, so an interrupted scan still says what it saw. After a signal, a watchdog thread
gives the orderly stop ``stop_grace`` seconds; a scan still busy then (a probe that never yields)
is marked ``interrupted`` by the watchdog, and the process ends with exit code 3. While it runs,
the scan records a heartbeat every ``heartbeat_interval`` seconds, so that a scan killed outright
(SIGKILL) is later marked ``interrupted`` too (store/scans.py), and finalised by the command that
marks it.

The store is the scan's memory: every piece of evidence is recorded as it comes (discovery's
answers in batches) and never held; every host is identified from what the store holds for it
(its open ports, then its observations in the order recorded), once its own steps and discovery
are done, whether the scan completes or is finalised after an interruption; the output reads
each host back from the store (:func:`scan_hosts`). So a scan holds no host, nor its evidence,
however many hosts it has (issue 15): the per-host stages read the hosts from the store a page
at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from typing import Any

from .config import ScanConfig
from .credentials import CredentialStore, load_credentials
from .errors import CamauditError, ScanFailed, StoreError
from .memory import release_free_memory
from .model import Finding, FindingSummary, Host, Observation, ScanResult, utc_now
from .scope import build_scope
from .store import Store, mark_interrupted_elsewhere, open_store

log = logging.getLogger(__name__)

#: progress(stage, done, total): stage is "sweep", "probe", ...; total may be 0 when unknown.
ProgressCallback = Callable[[str, int, int], None]

#: How often sweep results are flushed to the store, so an interruption loses at most this much.
_FLUSH_SECONDS = 0.5


#: The exit code of a scan its watchdog ended (DESIGN.md section 7: interrupted).
EXIT_INTERRUPTED = 3


class _StopSignals:
    """Turn SIGINT and SIGTERM into a stop event for the duration of a scan (main thread only),
    so every stage can finish its bookkeeping instead of dying mid-write.

    The orderly stop needs the event loop to get control back; a probe that never yields (a
    parser spinning on hostile bytes) would keep it from ever doing so. So a signal also wakes a
    watchdog thread, which does not depend on the loop: if the scan has not stopped ``grace``
    seconds later, it calls ``on_stuck`` (which marks the scan and ends the process)."""

    def __init__(self, stop: threading.Event, *, grace: float = 5.0,
                 on_stuck: Callable[[str], None] | None = None) -> None:
        self.stop = stop
        self.grace = grace
        self.on_stuck = on_stuck
        self._previous: dict[int, Any] = {}
        self._signal_name = ""
        self._signalled = threading.Event()
        self._done = threading.Event()
        self._watchdog: threading.Thread | None = None

    def _handler(self, signum: int, frame: object) -> None:
        if self.stop.is_set() and signum == signal.SIGINT:
            # A second Ctrl-C: the user means it. Restore the default and raise.
            self.restore()
            raise KeyboardInterrupt
        log.warning("received %s: stopping the scan and keeping what was found", signal.Signals(signum).name)
        self._signal_name = self._signal_name or signal.Signals(signum).name
        self._signalled.set()
        self.stop.set()

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handler)
            if self.on_stuck is not None:
                self._watchdog = threading.Thread(target=self._watch, name="camaudit-scan-watchdog", daemon=True)
                self._watchdog.start()
        return self

    def _watch(self) -> None:
        # Started before any signal can arrive, so a signal handler never has to start a thread.
        self._signalled.wait()
        if self._done.is_set() or self._done.wait(self.grace):
            return
        assert self.on_stuck is not None
        self.on_stuck(self._signal_name or "a stop signal")

    def restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._signalled.set()  # wake the watchdog so that it ends
        self.restore()


class _Heartbeat:
    """Touches the scan's row every ``interval`` seconds from a thread of its own, through a
    connection of its own, so that a later command can tell a killed scan from a running one
    (a long sweep or a slow device gives the scan's own thread no moment to do it).

    Each beat also gives the memory the scan freed back to the system (:mod:`.memory`): without
    it the resident size of a long scan creeps up with the hosts it probed (issue 15)."""

    def __init__(self, db_path: str, scan_id: str, interval: float, stale_after: float) -> None:
        self.db_path, self.scan_id, self.interval, self.stale_after = db_path, scan_id, interval, stale_after
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camaudit-scan-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        store: Store | None = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    if store is None:
                        # infinite: marking other killed scans is the commands' business, not this thread's
                        store = open_store(self.db_path, stale_after=float("inf"))
                    store.touch_scan(self.scan_id)
                except CamauditError as exc:
                    # A full disk or a locked database: the scan goes on; the next beat retries.
                    log.debug("scan %s: heartbeat not recorded: %s", self.scan_id, exc)
                release_free_memory()
        finally:
            if store is not None:
                store.close()


def _end_stuck_scan(db_path: str, scan_id: str, grace: float, notes: list[str]) -> Callable[[str], None]:
    """What the watchdog does when a signalled scan has not stopped within ``grace`` seconds:
    mark it interrupted through a connection of its own (what was written stays), say so on
    stderr, and end the process at once: the stuck thread cannot be stopped any other way."""

    def end(signal_name: str) -> None:
        note = (f"stopped by its watchdog: the scan did not stop within {grace:g} s of {signal_name} "
                "(a probe did not give back control); what was found before is kept")
        marked = mark_interrupted_elsewhere(db_path, scan_id, [*notes, note])
        message = f"camaudit: WARNING: {note}" + ("" if marked else f" (could not mark scan {scan_id} as interrupted)")
        with suppress(OSError):
            os.write(2, (message + "\n").encode())
        for stream in (sys.stdout, sys.stderr):
            with suppress(Exception):
                stream.flush()
        os._exit(EXIT_INTERRUPTED)

    return end


class _SweepWriter:
    """Collects open ports from the sweep and writes them in small batches."""

    def __init__(self, store: Store, scan_id: str) -> None:
        self.store, self.scan_id = store, scan_id
        self.pending: list[tuple[str, int]] = []
        self.last_flush = time.monotonic()

    def __call__(self, address: str, port: int) -> None:
        self.pending.append((address, port))
        if time.monotonic() - self.last_flush >= _FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            batch, self.pending = self.pending, []
            self.store.add_services(self.scan_id, batch)
        self.last_flush = time.monotonic()


class _DiscoveryWriter:
    """Takes discovery's observations as they come and records them in batches: a sweep of
    thousands of targets no longer holds every answer until discovery ends (issue 15). The
    store records the hosts only discovery found and the MACs named; the answers are read from
    it (a host's maker, its identity). It runs in the datagram callback, where an exception
    would close the socket: a failed write is kept and raised when discovery ends."""

    BATCH = 256

    def __init__(self, store: Store, scan_id: str) -> None:
        self.store, self.scan_id = store, scan_id
        self.pending: list[Observation] = []
        self.failure: Exception | None = None

    def __call__(self, obs: Observation) -> None:
        self.pending.append(obs)
        if len(self.pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.pending or self.failure is not None:
            return
        batch, self.pending = self.pending, []
        try:
            self.store.add_observations(self.scan_id, batch)
        except Exception as exc:  # noqa: BLE001 - raised again by check(), out of the callback
            self.failure = exc

    def check(self) -> None:
        """Write what is left; raise the first failure."""
        self.flush()
        if self.failure is not None:
            raise self.failure


def run_scan(
    config: ScanConfig,
    *,
    progress: ProgressCallback | None = None,
    stop: threading.Event | None = None,
    credentials: CredentialStore | None = None,
) -> ScanResult:
    """Run one scan as ``config`` says and record it in ``config.db_path``.

    ``credentials`` (for the read-only device APIs) default to ``config.credentials_path`` and
    the CAMAUDIT_USERNAME/CAMAUDIT_PASSWORD environment; they are never stored.

    Raises ScopeError/ConfigError (before anything is written) for bad input, StoreError when the
    database cannot be used. Otherwise returns a ScanResult whose ``status`` is ``complete``,
    ``interrupted`` or ``failed``. It counts the hosts that answered (``hosts_found``) and
    their open ports; each host as recorded (its ports, evidence, identity, settings and
    verdict) is read with :func:`scan_hosts`: the scan keeps none of them in memory (issue 15).
    """
    scope = build_scope(
        config.targets, exclude=config.exclude, allow_public=config.allow_public, max_hosts=config.max_hosts
    )
    addresses = scope.addresses()
    if config.sweep.engine == "nmap":
        from .discovery.nmap import require_nmap

        require_nmap()  # a missing nmap is a usage error, found before a scan is recorded
    if credentials is None and config.interrogate and not config.sweep_only:
        credentials = load_credentials(config.credentials_path)
    if config.policy_path is not None and not config.sweep_only:
        from .policy import load_policy

        load_policy(config.policy_path)  # a bad policy file is a usage error, found before scanning
    stop = stop or threading.Event()
    store = open_store(config.db_path, stale_after=config.stale_after)
    if store.marked_stale:
        finalise_stale_scans(store)
    scan_id = store.start_scan(
        targets=list(config.targets),
        exclude=list(config.exclude),
        config=dataclasses.asdict(config),
        config_hash=config.digest(),
        addresses=len(addresses),
        site=config.site,
    )
    result = ScanResult(scan_id, "running", utc_now(), None, list(config.targets), addresses_scanned=len(addresses),
                        site=config.site)
    result.notes.extend(scope.notes)
    status, error = "failed", None
    on_stuck = _end_stuck_scan(config.db_path, scan_id, config.stop_grace, result.notes)
    heartbeat = _Heartbeat(config.db_path, scan_id, config.heartbeat_interval, config.stale_after)
    try:
        with heartbeat, _StopSignals(stop, grace=config.stop_grace, on_stuck=on_stuck):
            _run_stages(config, store, result, addresses, progress, stop, credentials)
        status = "interrupted" if stop.is_set() else "complete"
    except KeyboardInterrupt:
        status = "interrupted"
    except CamauditError as exc:
        status, error = "failed", str(exc)
        raise
    except Exception as exc:  # an unexpected fault: record it, then report it plainly
        log.debug("scan %s failed", scan_id, exc_info=True)  # the traceback only with -vv
        error = f"{type(exc).__name__}: {exc}"
        raise ScanFailed(f"the scan failed: {error} (scan {scan_id} keeps what was found)") from exc
    finally:
        result.status = status
        result.finished_at = utc_now()
        with suppress(CamauditError):
            from .store.observations import count_hosts

            result.hosts_found, result.open_ports = count_hosts(store, scan_id)
        try:
            store.finish_scan(scan_id, status, notes=result.notes, error=error)
        except CamauditError:
            # A full disk: moving the write-ahead log into the database and truncating it can
            # free the room this one-row update needs. If not, say so, since `camaudit scans`
            # will then show the scan as still running.
            store.checkpoint()
            try:
                store.finish_scan(scan_id, status, notes=result.notes, error=error)
            except CamauditError as exc:
                log.warning("could not mark scan %s as %s: %s", scan_id, status, exc)
        if status in ("complete", "interrupted") and not config.sweep_only:
            # A complete scan was identified and assessed by its stages (this finds nothing left
            # to do); an interrupted one is identified and assessed here on what it stored.
            try:
                summary = finalise_scan(store, scan_id, status, policy_path=config.policy_path, mark=False)
                if summary is not None:
                    result.finding_summary = summary
            except CamauditError as exc:
                log.warning("could not identify and assess what scan %s found: %s", scan_id, exc)
        store.close()
    return result


def finalise_scan(store: Store, scan_id: str, status: str, *, policy_path: str | None = None,
                  notes: Sequence[str] = (), error: str | None = None, mark: bool = True) -> FindingSummary | None:
    """End a scan on whatever evidence it stored: identify every host not identified yet (from
    its stored observations and open ports), then assess the scan when it has no assessment yet.
    Used when a scan completes or is interrupted, and for a scan found stale later (marked
    ``interrupted`` by the next command). With ``mark``, the scan's status is set first (so a
    second interruption cannot leave it ``running``). Returns a summary of the new assessment's
    findings (:func:`scan_findings` reads them whole), or None when the scan was assessed
    already."""
    from .store import assessments as stored_assessments

    if mark:
        store.finish_scan(scan_id, status, notes=notes, error=error)
    identify_unidentified(store, scan_id)
    if stored_assessments.latest_assessment(store, scan_id) is not None:
        return None
    from .assess import record_assessment
    from .policy import load_policy

    reason = "scan" if status == "complete" else f"{status} scan: what it stored"
    return record_assessment(store, scan_id, load_policy(policy_path), reason=reason)[1]


def finalise_stale_scans(store: Store) -> list[str]:
    """Identify and assess what each killed scan stored, once it was marked interrupted by this
    open of the store (:attr:`Store.marked_stale`): a scan that died still says what it saw.
    A sweep-only scan is left as it is (it never identifies). Returns the scans finalised."""
    from .store.scans import scan_settings

    done = []
    for scan_id in store.marked_stale:
        settings = scan_settings(store, scan_id)
        if settings.get("sweep_only"):
            continue
        try:
            finalise_scan(store, scan_id, "interrupted", policy_path=settings.get("policy_path"), mark=False)
            done.append(scan_id)
        except CamauditError as exc:
            log.warning("could not identify and assess what killed scan %s stored: %s", scan_id, exc)
    store.marked_stale = []
    return done


def identify_recorded(store: Store, scan_id: str, address: str) -> None:
    """Identify one host of a scan from the evidence the store holds for it, and record the
    identity. Every scan identifies its hosts this way, a complete one host by host as each
    one's evidence is in, an interrupted one when it is finalised: the same evidence in the
    same order gives the same identity whichever way the scan ended."""
    from .fingerprint import identify
    from .store.observations import host_evidence

    evidence = host_evidence(store, scan_id, address)
    mac = next((o.value for o in evidence if o.kind == "mac"), None)
    store.add_identity(scan_id, address, identify(evidence), mac=mac)


def scan_hosts(db_path: str, scan_id: str) -> Iterator[Host]:
    """Each host of a recorded scan as its ``--json`` shows it (evidence, identity, settings,
    verdict), one at a time in address order, read from the store at ``db_path``. A scan keeps
    no host's evidence in memory once the host is identified (issue 15): this is where it is."""
    from .store.observations import each_host

    with open_store(db_path, create=False) as store:
        yield from each_host(store, scan_id)


def scan_findings(db_path: str, scan_id: str) -> Iterator[Finding]:
    """The findings of a recorded scan's latest assessment, evidence included, most severe first,
    one at a time, read from the store at ``db_path``. A scan's result keeps only their summary
    (:attr:`ScanResult.finding_summary`, issue 15)."""
    from .store.assessments import each_finding, latest_assessment

    with open_store(db_path, create=False) as store:
        latest = latest_assessment(store, scan_id)
        if latest is not None:
            yield from each_finding(store, latest.id)


def _run_stages(
    config: ScanConfig,
    store: Store,
    result: ScanResult,
    addresses: Sequence[str],
    progress: ProgressCallback | None,
    stop: threading.Event,
    credentials: CredentialStore | None,
) -> None:
    # 1. The port sweep. Its open ports go to the store as they come; the later stages read
    #    each host's from there, a page at a time, and hold none (issue 15).
    writer = _SweepWriter(store, result.scan_id)
    sweep_progress = (lambda done, total: progress("sweep", done, total)) if progress else None
    sweep = _sweep_function(config.sweep.engine)
    try:
        swept = sweep(addresses, config.sweep, on_open=writer, progress=sweep_progress, stop=stop)
    finally:
        writer.flush()
    result.notes.extend(swept.notes)
    del swept
    if config.sweep_only or stop.is_set():
        return

    # 2. Camera discovery protocols: some devices answer nothing else (a factory-default Dahua
    #    may be invisible to every method but DHIP, fingerprinting.md section 2).
    # 3. Probes of each open service, and 4. read-only interrogation (ONVIF, Hikvision ISAPI,
    #    Dahua CGI: identity documents and the devices' own network and cloud settings, which the
    #    egress verdicts use), host by host, each host's evidence written as it comes.
    #    All three run at once (issue 15): discovery mostly listens for late answers, a host's
    #    probes mostly wait for banners that never come, and its interrogation is mostly CPU, so
    #    a host is interrogated as soon as its own probes are done rather than after every
    #    host's probes. The host limit is the same: at most ``host_concurrency`` hosts are being
    #    probed or interrogated at any moment, and a host is only ever in one of the two.
    # 5. Identification, host by host: a host is identified from what the store holds for it
    #    once its evidence is all in (its own probes and reads, and discovery's answers). No
    #    evidence is held here (issue 15): the store has it, and the output is read from it.
    warm_up = _WarmUp(interrogate=config.interrogate)
    try:
        asyncio.run(_discover_probe_interrogate(config, store, result, addresses, credentials, progress, stop, warm_up))
    finally:
        warm_up.join()
    if stop.is_set():
        return

    # What the device clients left behind (reference cycles: zeep's and aiohttp's objects) is
    # collected now, so that the stages below reuse its memory instead of raising the peak.
    gc.collect()

    # The hosts no step applied to (those only discovery found) are identified now.
    identify_unidentified(store, result.scan_id)
    if stop.is_set():
        return

    # 6. Egress verification from this vantage (--listener), then a verdict per host from the
    #    check, its controls and each device's own settings (DESIGN.md section 5).
    if config.egress.listeners:
        from .store.observations import addresses_of_scan

        result.egress = _verify_egress(config, store, result.scan_id, addresses_of_scan(store, result.scan_id))
    if stop.is_set():
        return

    # 7. Assessment: register reconciliation and policy findings, recorded with the scan, a
    #    device at a time. The result keeps a summary of the findings (scan_findings reads them).
    from .assess import record_assessment
    from .policy import load_policy

    result.finding_summary = record_assessment(store, result.scan_id, load_policy(config.policy_path),
                                               reason="scan")[1]


async def _discover_probe_interrogate(
    config: ScanConfig,
    store: Store,
    result: ScanResult,
    addresses: Sequence[str],
    credentials: CredentialStore | None,
    progress: ProgressCallback | None,
    stop: threading.Event,
    warm_up: _WarmUp,
) -> None:
    """Stages 2 to 4 at once (see _run_stages), and each host's identification (5) once its
    own steps and discovery are done.

    Every piece of evidence goes to the store as it comes (discovery's answers in batches), and
    the hosts are read from it a page at a time (:func:`each_swept_host`). Interrogation picks ISAPI or
    Dahua CGI (and the vendor's credential entry) by the maker the recorded evidence names; for
    a host whose evidence names none yet, it waits for discovery's answers when it first needs
    the maker (after the ONVIF reads, or before them when credentials are given), so that a
    device only SADP or DHIP names is asked in its maker's API as before.
    """
    discovered = asyncio.Event()
    discovery: asyncio.Task[None] | None = None
    waiting: deque[str] = deque()  # hosts whose steps ended before discovery did, to identify after it
    # Discovery first. What the later stages import and load (about 0.8 s of CPU) is done in a
    # thread once its first datagrams are out: then the scan waits on the network, and the thread
    # does not compete with the work that puts the first packets out (a one-host scan has 1.5 s).
    if config.discovery.enabled:

        async def discover_then_merge() -> None:
            writer = _DiscoveryWriter(store, result.scan_id)
            try:
                found = await _discover(config, addresses, stop, on_sent=warm_up.start, on_observation=writer)
                writer.check()
                if found is not None:
                    _merge_discovery(store, result, found)
            finally:
                discovered.set()
            if progress:
                progress("discover", 1, 1)
            # One host at a time, letting the probes of the others go on in between.
            while waiting and not stop.is_set():
                await identify_now(waiting.popleft())

        discovery = asyncio.create_task(discover_then_merge())
        if progress:
            progress("discover", 0, 1)
    else:
        discovered.set()
        warm_up.start()
    from .probes import probe_host
    from .probes.ports import candidate_http_ports
    from .store.observations import each_swept_host

    def swept_hosts() -> Iterator[Host]:
        return each_swept_host(store, result.scan_id)

    # A host's evidence goes to the store as it comes and is never held here: the store is
    # what the maker is read from, and what the host is identified from (issue 15).
    async def probe(host: Host) -> None:
        report = await probe_host(host.address, host.ports, config.probe)
        # Writing is quick and local; doing it inline keeps the order of evidence simple.
        store.add_observations(result.scan_id, report.observations)
        store.add_problems(result.scan_id, host.address, report.problems)

    def maker(host: Host) -> str | None:
        from .fingerprint import identify
        from .store.observations import host_evidence

        vendor = identify(host_evidence(store, result.scan_id, host.address)).vendor
        return None if vendor == "unknown" else vendor

    async def maker_after_discovery(host: Host) -> str | None:
        await discovered.wait()
        return maker(host)

    async def read(host: Host) -> None:
        # Loaded off the event loop (waiting for the warm-up's load if it is under way), which
        # meanwhile goes on with discovery and the other hosts.
        await _loaded("camaudit.fingerprint.engine")
        await _loaded("camaudit.probes.interrogate")
        from .probes.interrogate import interrogate

        # The evidence so far names the maker, which picks ISAPI or Dahua CGI. When it does
        # not and discovery is still listening, interrogation asks for it once it needs it
        # (discovery's answers are all recorded by then), after the reads that do not need it.
        vendor = maker(host)
        later = (lambda: maker_after_discovery(host)) if vendor is None and not discovered.is_set() else None
        report = await interrogate(host.address, host.ports, credentials=credentials,
                                   timeout=config.probe.timeout, vendor=vendor, vendor_later=later)
        store.add_observations(result.scan_id, report.observations)
        store.add_problems(result.scan_id, host.address, report.problems)
        store.add_device_settings(result.scan_id, report.settings)

    async def identify_now(address: str) -> None:
        await _loaded("camaudit.fingerprint.engine")
        identify_recorded(store, result.scan_id, address)

    async def settle(host: Host) -> None:
        # The host's own steps are done and their evidence is in the store, which is what it
        # is identified from. Discovery's answers are part of it: a host whose own steps ended
        # first is identified once they are in (by the discovery task), and the next host
        # starts now.
        if discovered.is_set():
            await identify_now(host.address)
        else:
            waiting.append(host.address)

    steps = [_Step("probe", lambda h: bool(h.ports), probe)]
    if config.interrogate:
        steps.append(_Step("interrogate", lambda h: bool(candidate_http_ports(h.ports)), read))
        if any(step.wanted(h) for h in swept_hosts() for step in steps[1:]):
            # The ONVIF client's parsed WSDL is loaded (in a thread) while the first probes run.
            prepared = asyncio.create_task(_prepare_interrogation())
        else:
            prepared = None
    else:
        prepared = None
    try:
        await _each_host(swept_hosts, steps, store, result.scan_id, config.probe.host_concurrency,
                         progress, stop, finish=_Step("identify", lambda h: True, settle))
    except BaseException:
        # The store cannot take more (the scan fails): discovery's answers could not be kept
        # either, so it is not waited for.
        for task in (discovery, prepared):
            if task is not None:
                task.cancel()
                with suppress(BaseException):
                    await task
        raise
    if prepared is not None:
        with suppress(Exception):  # a failed load fails each device's read, where it is reported
            await prepared
        from .probes.onvif import release

        release()
    if discovery is not None:
        await discovery


#: The modules :func:`_loaded` has seen imported and loaded in this process.
_LOADED: set[str] = set()


async def _loaded(name: str) -> None:
    """Import and load ``name`` (:func:`_import_and_load`) in a thread, off the event loop, the
    first time; after that at once. Each host's steps need the engine and the device clients:
    a thread hop a host for what was loaded long before cost a large scan for nothing."""
    if name not in _LOADED:
        await asyncio.to_thread(_import_and_load, name)
        _LOADED.add(name)


def _import_and_load(name: str) -> None:
    """Import a module the later stages need; for the engine, load the signatures too."""
    import importlib

    importlib.import_module(name)
    if name == "camaudit.fingerprint.engine":
        from .fingerprint.engine import default_engine

        default_engine()


class _WarmUp:
    """Import and load what the stages after the probes need (about 0.8 s of CPU) in a thread,
    while the first stages wait on the network.

    Nothing waits for it: a stage that needs a module sooner imports it in a thread of its own
    (the import lock makes it wait for the warm-up's import rather than do a second one; the
    engine has its own lock), so the event loop never stops for it. It is joined when the
    stages end: a thread still importing while the interpreter shuts down can crash it.
    """

    def __init__(self, *, interrogate: bool) -> None:
        # In the order the scan needs them.
        self.names = ["camaudit.fingerprint.engine", *(["camaudit.probes.interrogate"] if interrogate else []),
                      "camaudit.assess", "camaudit.policy", "camaudit.report.messages"]
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._work, name="camaudit-warm-up")
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def _work(self) -> None:
        try:
            for name in self.names:
                _import_and_load(name)
        except Exception:  # noqa: BLE001  (the stage that needs it imports again and reports)
            log.debug("warming up failed", exc_info=True)


async def _prepare_interrogation() -> None:
    await _loaded("camaudit.probes.interrogate")
    from .probes.interrogate import prepare

    await prepare()


def _merge_discovery(store: Store, result: ScanResult, found: Any) -> None:
    """Record what discovery says beside its observations (which _DiscoveryWriter recorded as
    they came): its notes, and the problems of the addresses that flooded it."""
    result.notes.extend(found.notes)
    for address, problems in found.problems.items():
        store.add_problems(result.scan_id, address, problems)


async def _discover(config: ScanConfig, addresses: Sequence[str], stop: threading.Event,
                    on_sent: Callable[[], None] | None = None,
                    on_observation: Callable[[Observation], None] | None = None) -> Any:
    from .discovery.runner import discover

    task = asyncio.create_task(
        discover(
            addresses,
            interfaces=config.discovery.interfaces,
            multicast=config.discovery.multicast,
            arp=config.discovery.arp,
            timeout=config.discovery.timeout,
            rate=config.discovery.rate,
            on_sent=on_sent,
            on_observation=on_observation,
        )
    )
    watcher = asyncio.create_task(_cancel_on_stop([task], stop))
    try:
        return await task
    except asyncio.CancelledError:
        return None
    finally:
        watcher.cancel()


def _verify_egress(config: ScanConfig, store: Store, scan_id: str, addresses: Sequence[str]) -> dict[str, Any]:
    from .egress.check import CheckOptions
    from .egress.run import check_and_record, record_scan_verdicts_and_rollup
    from .store.observations import each_device_settings

    egress = config.egress
    options = CheckOptions(listeners=list(egress.listeners), dns_zone=egress.dns_zone, timeout=egress.timeout,
                           resolvers=list(egress.resolvers) or None, upnp=egress.upnp, natpmp=egress.natpmp,
                           discover_proxy=egress.discover_proxy, ra_wait=egress.ra_wait, max_hops=egress.max_hops,
                           skip=list(egress.skip))
    if egress.tcp_ports:
        options.tcp_ports = list(egress.tcp_ports)
    if egress.udp_ports:
        options.udp_ports = list(egress.udp_ports)
    outcome = check_and_record(store, options, scan_id=scan_id, window_s=egress.control_window)
    # None: the device's settings were not read (no HTTP port, interrogation off), so its
    # verdict cannot lean on what it says about itself. The verdicts are recorded, and the
    # output reads each host's from the store.
    settings: dict[str, Any] = dict.fromkeys(addresses)
    settings |= {address: recorded for address, recorded in each_device_settings(store, scan_id) if address in settings}
    _verdicts, segment = record_scan_verdicts_and_rollup(store, scan_id, outcome, settings)
    # The segment's verdict as the report shows it (the roll-up of the sensor's check and every
    # device), beside the sensor's own check: the console says the former first.
    seg = segment.to_json()
    return outcome.to_json() | {"segment_verdict": {
        "subject": segment.subject, "verdict": segment.verdict, "egress": segment.egress, "exposed": segment.exposed,
        "qualifiers": seg["qualifiers"], "missing": seg["missing"],
        "qualifier_codes": seg["qualifier_codes"], "missing_codes": seg["missing_codes"]}}


def _sweep_function(engine: str) -> Callable[..., Any]:
    if engine == "nmap":
        from .discovery.nmap import nmap_sweep

        return nmap_sweep
    from .discovery.tcp import sweep

    return sweep


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    """One stage of the per-host work: its name (for progress and problem lines), which hosts it
    applies to, and the work."""

    stage: str
    wanted: Callable[[Host], bool]
    work: Callable[[Host], Awaitable[None]]


async def _each_host(
    todo: Callable[[], Iterable[Host]],
    steps: Sequence[_Step],
    store: Store,
    scan_id: str,
    concurrency: int,
    progress: ProgressCallback | None,
    stop: threading.Event,
    *,
    finish: _Step | None = None,
) -> None:
    """Run each host's steps in order, then its ``finish``, ``concurrency`` hosts at a time,
    until done or ``stop`` is set. A fault in one host's step is recorded as that host's
    problem, and its next steps and the other hosts go on; a store that cannot take more stops
    everything. ``concurrency`` workers take the hosts in turn: no task waits per host, and
    ``todo()`` gives the hosts afresh for each pass over them (a count first, then the work),
    so memory does not grow with their number (issue 15)."""
    totals = dict.fromkeys((step.stage for step in steps), 0)
    busy = 0  # hosts some step applies to
    for host in todo():
        wanted = [step.stage for step in steps if step.wanted(host)]
        busy += bool(wanted)
        for stage in wanted:
            totals[stage] += 1
    done = dict.fromkeys(totals, 0)
    fatal: list[StoreError] = []

    async def attempt(step: _Step, host: Host) -> bool:
        """Do one step for one host; False when nothing more can be done for any host."""
        try:
            await step.work(host)
        except StoreError as exc:
            # The database cannot take more (a full disk, a read-only file): no other
            # host's evidence could be kept either, so the scan stops and fails.
            fatal.append(exc)
            for task in tasks:
                task.cancel()
            return False
        except Exception as exc:
            log.warning("%s of %s failed: %s: %s", step.stage, host.address, type(exc).__name__, exc)
            log.debug("%s of %s failed", step.stage, host.address, exc_info=True)
            problem = f"{step.stage} failed unexpectedly ({type(exc).__name__}: {exc})"
            store.add_problems(scan_id, host.address, [problem])
        return True

    async def one(host: Host) -> bool:
        for step in [*steps, *([finish] if finish is not None else [])]:
            if stop.is_set():
                return False
            if not step.wanted(host):
                continue
            if not await attempt(step, host):
                return False
            if step is not finish:
                done[step.stage] += 1
                if progress:
                    progress(step.stage, done[step.stage], totals[step.stage])
        return True

    # Shared by the workers: each next() hands out another host.
    turn = (host for host in todo() if any(step.wanted(host) for step in steps))

    async def worker() -> None:
        for host in turn:
            if not await one(host):
                return

    tasks = [asyncio.create_task(worker()) for _ in range(min(concurrency, busy))]
    watcher = asyncio.create_task(_cancel_on_stop(tasks, stop))
    try:
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        watcher.cancel()
    if fatal:
        raise fatal[0]


async def _cancel_on_stop(tasks: Sequence[asyncio.Task[Any]], stop: threading.Event) -> None:
    # The stop event is a threading.Event set by a signal handler or another thread; waiting on
    # it in a worker thread would keep asyncio.run() from returning, so poll it at 10 Hz.
    while not stop.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()


def identify_unidentified(store: Store, scan_id: str) -> None:
    """Identify every host of the scan the store holds no identity for yet, each from its own
    recorded evidence (:func:`identify_recorded`), one at a time; the store says which, a page
    at a time (issue 15)."""
    from .store import observations as stored_observations

    for address in stored_observations.each_unidentified(store, scan_id):
        identify_recorded(store, scan_id, address)



