"""The site agent (`camaudit agent run`): pull the site's jobs, run them, send their bundles.

One loop, until SIGINT/SIGTERM:

1. connect out to the NATS server, retrying with backoff while it is unreachable (and saying so
   on stderr); refused credentials end the agent (exit 2: waiting will not mend them);
2. heartbeat every ``heartbeat_interval`` seconds (version, its own clock);
3. send the outbox: every ``pending`` bundle is uploaded to the site's bucket and announced
   (``uploaded``); an ``uploaded`` bundle the centre has removed from the bucket is ``merged``;
4. pull one job from the site's durable consumer; run it (a scan through
   :func:`camaudit.audit.run_scan`, the site from the agent's fleet file), sending progress notes
   so the server does not hand it out again meanwhile; export its bundle into the outbox (the
   agent's own store), and only then acknowledge the job.

The store is the outbox, so a bundle made while the server is unreachable waits there and is
sent when the server returns; an agent killed before acknowledging a job runs it again when the
server redelivers it (the centre merges each run once).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from .. import __version__
from ..errors import CamauditError, ConfigError, FleetAuthError, FleetUnavailable, OutputError, StoreError
from ..store import bundles as stored_bundles
from ..store import open_store
from .config import SiteSettings
from .export import agent_id_for, export_bundle
from .keys import AgentKey, load_or_create_key
from .nats import (
    Job,
    JobQueue,
    backoff_delays,
    bundle_present,
    connect_with_retry,
    put_bundle,
    put_heartbeat,
)

log = logging.getLogger(__name__)

#: Scan options a job may set; everything else is the agent's own configuration (a job cannot,
#: for instance, allow public targets or change where the store is).
SCAN_JOB_OPTIONS = frozenset({"exclude", "ports", "discovery_enabled", "sweep_only", "interrogate", "max_hosts",
                              "probe_timeout", "connect_timeout", "rate", "concurrency"})
#: Egress check options a job may set (the listeners are required).
EGRESS_JOB_OPTIONS = frozenset({"tcp_ports", "udp_ports", "dns_zone", "resolvers", "discover_proxy", "segment",
                                "timeout", "max_hops", "ra_wait", "upnp", "natpmp", "skip", "control_window"})
#: Seconds between two progress notes on a running job (well inside the default ack wait).
PROGRESS_EVERY = 10.0


@dataclass
class AgentState:
    """What the agent has done, for its log and for tests."""

    jobs_done: int = 0
    bundles_sent: int = 0
    connected: bool = False


class Agent:
    def __init__(self, settings: SiteSettings, db_path: str | Path, *, config_path: str | None = None,
                 stop: asyncio.Event | None = None, say: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.db_path = str(db_path)
        self.config_path = config_path
        self.stop = stop or asyncio.Event()
        self.say = say or (lambda line: log.warning("%s", line))
        self.state = AgentState()
        self.key: AgentKey = load_or_create_key(settings.key_file)
        self.agent_id = agent_id_for(self.key)
        self.scan_stop = threading.Event()
        self._next_merge_check = 0.0

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Until :attr:`stop` is set. FleetAuthError and ConfigError end it; an unreachable or
        lost server is waited for."""
        with open_store(self.db_path):
            pass  # create and migrate the store (the outbox) before the first connection
        delays = backoff_delays(self.settings.limits.retry_initial, self.settings.limits.retry_max)
        while not self.stop.is_set():
            try:
                await self._session()
                delays = backoff_delays(self.settings.limits.retry_initial, self.settings.limits.retry_max)
            except (FleetAuthError, ConfigError):
                raise
            except (TimeoutError, FleetUnavailable, OSError, nats.errors.Error) as exc:
                pending = len(self._outbox(("pending",)))
                pause = next(delays)
                self.say(f"the NATS server at {self.settings.server} is unreachable ({_short(exc)}); keeping "
                         f"{pending} bundle(s) in the outbox, retrying in {pause:.0f} s")
                await self._sleep(pause)

    async def _session(self) -> None:
        async def on_retry(error: FleetUnavailable, pause: float, attempt: int) -> None:
            pending = len(self._outbox(("pending",)))
            self.say(f"{error}; keeping {pending} bundle(s) in the outbox, retrying in {pause:.0f} s "
                     f"(attempt {attempt})")

        client = await self._until_stopped(connect_with_retry(
            self.settings, name=f"camaudit agent {self.settings.site}", reconnect=False, on_retry=on_retry))
        if client is None:
            return
        self.state.connected = True
        self.say(f"agent {self.agent_id} of site {self.settings.site} connected to {self.settings.server}")
        try:
            js = client.jetstream(timeout=self.settings.limits.request_timeout)
            queue = await self._open_queue(js)
            if queue is None:
                return
            next_beat = 0.0
            while not self.stop.is_set():
                if client.is_closed or not client.is_connected:
                    raise FleetUnavailable("the connection to the NATS server was lost")
                if time.monotonic() >= next_beat:
                    await put_heartbeat(js, self.settings.site, self.agent_id, __version__)
                    next_beat = time.monotonic() + self.settings.limits.heartbeat_interval
                await self._send_outbox(js)
                for message in await queue.fetch(timeout=1.0):
                    await self._handle(js, message)
        finally:
            self.state.connected = False
            try:
                await asyncio.wait_for(client.close(), timeout=5)
            except (TimeoutError, nats.errors.Error, OSError):
                pass

    async def _open_queue(self, js: JetStreamContext) -> JobQueue | None:
        """Bind to the site's consumer; until the centre has provisioned the fleet, wait."""
        delays = backoff_delays(self.settings.limits.retry_initial, self.settings.limits.retry_max)
        while not self.stop.is_set():
            try:
                return await JobQueue.open(js, self.settings.site)
            except nats.js.errors.NotFoundError:
                pause = next(delays)
                self.say(f"site {self.settings.site} has no job queue on the server yet (has `camaudit central "
                         f"serve` run?); waiting {pause:.0f} s")
                await self._sleep(pause)
        return None

    # -- jobs -------------------------------------------------------------------------------

    async def _handle(self, js: JetStreamContext, message: Msg) -> None:
        job = Job.from_bytes(message.data)
        if job is None or job.site != self.settings.site:
            self.say("a job message that is not a job for this site was dropped")
            await message.term()
            return
        if job.kind == "scan":
            self.say(f"job {job.job_id}: scan of {', '.join(map(str, job.arguments.get('targets', [])))[:200]}")
        else:
            self.say(f"job {job.job_id}: egress check towards {', '.join(map(str, job.arguments.get('listeners', [])))[:200]}")
        try:
            if job.kind == "scan":
                scan_id: str | None = await self._run_with_progress(message, lambda: self._scan(job))
                run_id, egress_run_id = scan_id, None
            else:
                egress_run_id = await self._run_with_progress(message, lambda: self._egress(job))
                run_id, scan_id = egress_run_id, None
            with open_store(self.db_path) as store:
                exported = export_bundle(store, self.key, scan_ref=scan_id, egress_run_id=egress_run_id,
                                         site=self.settings.site, job_id=job.job_id, agent_id=self.agent_id)
                stored_bundles.add_to_outbox(store, bundle_id=exported.bundle_id, site=exported.site,
                                             kind=exported.kind, run_id=exported.run_id, job_id=job.job_id,
                                             bundle=exported.bundle)
        except (StoreError, OutputError) as exc:
            # A full disk here: the job is not lost; the server hands it out again later.
            self.say(f"job {job.job_id} could not be recorded: {exc}; it will be run again")
            await message.nak(delay=self.settings.limits.retry_max)
            return
        except CamauditError as exc:
            # A job that cannot run here (bad targets, a refused option) will not run better on
            # redelivery: say why and drop it.
            self.say(f"job {job.job_id} failed: {exc}")
            await message.term()
            return
        except Exception as exc:  # a job's arguments of the wrong type, a fault: the agent goes on
            log.debug("job %s failed", job.job_id, exc_info=True)
            self.say(f"job {job.job_id} failed: {type(exc).__name__}: {str(exc)[:200]}")
            await message.term()
            return
        # The bundle is safe in the outbox: the job is done, whatever happens to the upload.
        await message.ack_sync(timeout=self.settings.limits.request_timeout)
        self.state.jobs_done += 1
        self.say(f"job {job.job_id}: {job.kind} {run_id} done, bundle {exported.bundle_id[:16]} in the outbox")
        await self._send_outbox(js)

    async def _run_with_progress(self, message: Msg, work: Callable[[], str]) -> str:
        task = asyncio.ensure_future(asyncio.to_thread(work))
        while True:
            done, _ = await asyncio.wait({task}, timeout=PROGRESS_EVERY)
            if done:
                return task.result()
            if self.stop.is_set():
                self.scan_stop.set()
            try:
                await message.in_progress()
            except (nats.errors.Error, OSError) as exc:
                log.debug("progress note failed: %s", exc)

    def _scan(self, job: Job) -> str:
        from ..audit import run_scan
        from ..config import load_config

        targets, arguments = _job_arguments(job, "targets", SCAN_JOB_OPTIONS, "the job names no targets")
        if isinstance(arguments.get("ports"), list):
            arguments["ports"] = tuple(arguments["ports"])
        config = load_config(self.config_path, targets=targets, db_path=self.db_path, **arguments)
        config = dataclasses.replace(config, site=self.settings.site)
        self.scan_stop.clear()
        result = run_scan(config, stop=self.scan_stop)
        return result.scan_id

    def _egress(self, job: Job) -> str:
        from ..egress.check import CheckOptions
        from ..egress.run import check_and_record

        listeners, arguments = _job_arguments(job, "listeners", EGRESS_JOB_OPTIONS, "the egress job names no listener")
        window = float(arguments.pop("control_window", 3600.0))
        try:
            options = CheckOptions(listeners=listeners, **arguments)
        except TypeError as exc:
            raise ConfigError(f"the egress job's options are not usable: {exc}") from None
        with open_store(self.db_path) as store:
            outcome = check_and_record(store, options, window_s=window, site=self.settings.site)
        return outcome.run.run_id

    # -- the outbox -------------------------------------------------------------------------

    def _outbox(self, states: tuple[str, ...]) -> list[dict[str, Any]]:
        with open_store(self.db_path) as store:
            return stored_bundles.outbox(store, states=states)

    async def _send_outbox(self, js: JetStreamContext) -> None:
        # Whether the centre has merged what was sent is asked at the heartbeat's pace, not at
        # every turn of the loop (a centre that is down would otherwise be asked every second).
        look = time.monotonic() >= self._next_merge_check
        if look:
            self._next_merge_check = time.monotonic() + self.settings.limits.heartbeat_interval
        for entry in self._outbox(("pending", "uploaded")):
            bundle_id = str(entry["bundle_id"])
            if entry["state"] == "uploaded":
                if look and not await bundle_present(js, self.settings.site, bundle_id):
                    self._set_state(bundle_id, "merged")
                continue
            with open_store(self.db_path) as store:
                data = stored_bundles.outbox_bundle(store, bundle_id)
            if data is None:
                continue
            # The first upload's notice is named by the bundle id; a later one (this agent died
            # between upload and bookkeeping, and the centre may have merged and removed it
            # since) gets a fresh name, so that the server does not drop it as a duplicate.
            with open_store(self.db_path) as store:
                again = stored_bundles.count_upload_attempt(store, bundle_id) > 0
            await put_bundle(js, self.settings.site, bundle_id, data,
                             message_id=f"{bundle_id}.{uuid.uuid4().hex}" if again else None)
            self._set_state(bundle_id, "uploaded")
            self.state.bundles_sent += 1
            self.say(f"bundle {bundle_id[:16]} ({entry['kind']} {entry['run_id']}) sent to the centre")

    def _set_state(self, bundle_id: str, state: str) -> None:
        with open_store(self.db_path) as store:
            stored_bundles.set_outbox_state(store, bundle_id, state)

    # -- helpers ----------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def _until_stopped(self, work: Any) -> Any:
        task = asyncio.ensure_future(work)
        stopper = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            stopper.cancel()
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping: the attempt's fate is moot
            await task
        return None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _job_arguments(job: Job, required: str, allowed: frozenset[str],
                   missing: str) -> tuple[list[str], dict[str, Any]]:
    """A job's required list of strings (its targets, its listeners) and its other options, each
    one the agent takes from a job: a job comes over the network and is checked like input."""
    arguments = dict(job.arguments)
    values = arguments.pop(required, None)
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise ConfigError(missing)
    unknown = sorted(set(arguments) - allowed)
    if unknown:
        raise ConfigError(f"the job sets options an agent does not take from a job: {', '.join(unknown)}")
    return values, arguments
