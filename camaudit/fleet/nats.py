"""The fleet's JetStream wiring (nats-py): connect, provision, jobs, bundles, heartbeats.

Everything here speaks to a NATS server; the names and permissions it relies on are in
:mod:`camaudit.fleet.subjects`. The centre provisions (streams, consumers, buckets); a site's
credentials can only use what belongs to that site, which the server enforces.

Errors a user can cause become one-line camaudit errors: :class:`FleetUnavailable` (server not
reachable) and :class:`FleetAuthError` (credentials refused). nats-py's own exceptions never
leave this module from :func:`connect`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from ..config import FleetConfig
from ..errors import FleetAuthError, FleetUnavailable, InputError
from . import subjects

log = logging.getLogger(__name__)

#: Largest job message accepted from the stream (jobs are small JSON documents).
MAX_JOB_BYTES = 65536
#: Largest heartbeat value.
MAX_HEARTBEAT_BYTES = 4096
JOB_KINDS = ("scan", "egress")
#: Unmerged bundle notices one site may have waiting (far above any real backlog).
MAX_NOTICES_PER_SITE = 100_000
#: Room for all heartbeats (one small value per agent): a site cannot grow the bucket without end.
HEARTBEAT_BUCKET_BYTES = 16 * 1024 * 1024


class Principal(Protocol):
    """What :func:`connect` needs from a fleet file (CentralSettings or SiteSettings)."""

    @property
    def server(self) -> str: ...
    @property
    def user(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def inbox_prefix(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def limits(self) -> FleetConfig: ...
    @property
    def path(self) -> Any: ...


async def connect(settings: Principal, *, name: str = "camaudit", reconnect: bool = False,
                  on_error: Callable[[Exception], None] | None = None) -> Client:
    """One bounded connection attempt (nats-py tries the server twice, at most).

    ``reconnect``: after this first connection succeeds, let nats-py reconnect on its own when the
    link drops (long-running processes); the first connection itself is never retried here, so
    that a caller decides (see :func:`connect_with_retry`). ``on_error`` hears each error the
    server reports on the open connection (a permissions violation, a lost link).
    """
    errors: list[BaseException] = []

    async def record(error: Exception) -> None:
        errors.append(error)
        log.debug("nats: %r", error)
        if on_error is not None:
            on_error(error)

    limits = settings.limits
    try:
        client = await asyncio.wait_for(nats.connect(
            servers=[settings.server], user=settings.user, password=settings.password,
            inbox_prefix=settings.inbox_prefix, name=name, error_cb=record,
            connect_timeout=max(1, round(limits.connect_timeout)),
            # A refused or unresolvable server is tried twice, then NoServersError; without a cap
            # nats-py would try forever, even with allow_reconnect off.
            allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.2,
        ), timeout=3 * limits.connect_timeout + 1)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        raise _connect_error(settings, [*errors, exc]) from None
    if reconnect:
        # nats-py reads these options at each reconnection: from now on, keep trying.
        client.options["allow_reconnect"] = True
        client.options["max_reconnect_attempts"] = -1
        client.options["reconnect_time_wait"] = limits.retry_initial
    return client


def _connect_error(settings: Principal, errors: Sequence[BaseException]) -> Exception:
    where = f"the NATS server at {settings.server}"
    for error in errors:
        if isinstance(error, nats.errors.AuthorizationError) or "authorization violation" in str(error).lower():
            return FleetAuthError(f"{where} refused the credentials of {settings.principal} (user "
                                  f"{settings.user!r} in {settings.path}): the password is wrong or was replaced")
    for error in errors:
        if isinstance(error, socket.gaierror):
            return FleetUnavailable(f"cannot reach {where}: its host name does not resolve")
        if isinstance(error, ConnectionRefusedError):
            return FleetUnavailable(f"cannot reach {where}: connection refused (is nats-server running?)")
        if isinstance(error, TimeoutError | nats.errors.TimeoutError):
            return FleetUnavailable(f"cannot reach {where}: no answer within {settings.limits.connect_timeout:g} s")
        if isinstance(error, OSError) and error.strerror:
            return FleetUnavailable(f"cannot reach {where}: {error.strerror}")
    return FleetUnavailable(f"cannot reach {where}")


def backoff_delays(initial: float, maximum: float, rng: random.Random | None = None) -> Iterator[float]:
    """Pauses between connection attempts: doubling from ``initial`` up to ``maximum``, each with
    up to 20% random jitter so that many agents cut off together do not return in step."""
    rng = rng or random.Random()
    delay = initial
    while True:
        yield min(maximum, delay) * (1 + 0.2 * rng.random())
        delay = min(maximum, delay * 2)


async def connect_with_retry(settings: Principal, *, give_up_after: float | None = None, name: str = "camaudit",
                             reconnect: bool = True,
                             on_retry: Callable[[FleetUnavailable, float, int], Awaitable[None] | None] | None = None,
                             ) -> Client:
    """Connect, retrying with backoff while the server is unreachable (an agent's way).

    Refused credentials are not retried: they will not heal by waiting. ``give_up_after``
    (seconds, None = never) bounds the whole attempt; then the last FleetUnavailable is raised,
    saying for how long it tried. ``on_retry(error, pause, attempt)`` is told before each pause.
    Without ``on_retry`` each retry is logged as a warning: the agent says what it is doing.
    """
    started = time.monotonic()
    limits = settings.limits
    attempt = 0
    for pause in backoff_delays(limits.retry_initial, limits.retry_max):
        attempt += 1
        try:
            return await connect(settings, name=name, reconnect=reconnect)
        except FleetUnavailable as error:
            elapsed = time.monotonic() - started
            if give_up_after is not None and elapsed + pause > give_up_after:
                raise FleetUnavailable(f"{error} (gave up after {attempt} attempt(s) in {elapsed:.0f} s)") from None
            if on_retry is None:
                log.warning("%s; retrying in %.0f s (attempt %d)", error, pause, attempt)
            else:
                result = on_retry(error, pause, attempt)
                if result is not None:
                    await result
            await asyncio.sleep(pause)
    raise AssertionError("backoff_delays never ends")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# Provisioning (the centre)


async def provision(js: JetStreamContext, sites: Sequence[str], limits: FleetConfig) -> None:
    """Create (or bring up to date) everything the fleet uses. Idempotent; the centre runs it at
    start. Agents cannot: their credentials may create nothing."""
    for site in sites:
        subjects.check_site_name(site)
    await _ensure_stream(js, api.StreamConfig(
        name=subjects.JOBS_STREAM, subjects=[f"{subjects.JOBS_PREFIX}.*"],
        retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
        max_age=limits.job_max_age, duplicate_window=limits.job_duplicate_window,
        max_msg_size=MAX_JOB_BYTES, discard=api.DiscardPolicy.NEW))
    # Sites publish notices into one shared stream: a cap per subject (per site), discarding that
    # site's new notices only, so that one flooding site cannot crowd out the others' bundles.
    await _ensure_stream(js, api.StreamConfig(
        name=subjects.NOTICES_STREAM, subjects=[f"{subjects.NOTICES_PREFIX}.*"],
        retention=api.RetentionPolicy.WORK_QUEUE, storage=api.StorageType.FILE,
        duplicate_window=limits.job_duplicate_window, max_msg_size=4096, discard=api.DiscardPolicy.NEW,
        max_msgs_per_subject=MAX_NOTICES_PER_SITE, discard_new_per_subject=True))
    await _ensure_consumer(js, subjects.NOTICES_STREAM, api.ConsumerConfig(
        durable_name=subjects.MERGER_CONSUMER, ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=limits.job_ack_wait, filter_subject=f"{subjects.NOTICES_PREFIX}.*"))
    for site in sites:
        await _ensure_consumer(js, subjects.JOBS_STREAM, api.ConsumerConfig(
            durable_name=subjects.site_consumer(site), ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=limits.job_ack_wait, max_deliver=limits.job_max_deliver,
            filter_subject=subjects.jobs_subject(site)))
        try:
            await js.object_store(subjects.bundle_bucket(site))
        except nats.js.errors.BucketNotFoundError:
            await js.create_object_store(subjects.bundle_bucket(site), config=api.ObjectStoreConfig(
                description=f"camaudit evidence bundles of site {site}", max_bytes=limits.bucket_max_bytes,
                storage=api.StorageType.FILE))
    try:
        await js.key_value(subjects.HEARTBEAT_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        await js.create_key_value(api.KeyValueConfig(
            bucket=subjects.HEARTBEAT_BUCKET, description="camaudit agent heartbeats", history=1,
            max_value_size=MAX_HEARTBEAT_BYTES, max_bytes=HEARTBEAT_BUCKET_BYTES, storage=api.StorageType.FILE))
    try:
        await js.key_value(subjects.MERGED_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        await js.create_key_value(api.KeyValueConfig(
            bucket=subjects.MERGED_BUCKET, description="camaudit jobs whose bundle the centre merged", history=1,
            max_value_size=4096, ttl=limits.job_max_age, storage=api.StorageType.FILE))


async def _ensure_stream(js: JetStreamContext, config: api.StreamConfig) -> None:
    assert config.name is not None
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)
        return
    await js.update_stream(config)


async def _ensure_consumer(js: JetStreamContext, stream: str, config: api.ConsumerConfig) -> None:
    assert config.durable_name is not None
    try:
        await js.consumer_info(stream, config.durable_name)
    except nats.js.errors.NotFoundError:
        await js.add_consumer(stream, config)


# --------------------------------------------------------------------------------------------
# Jobs


@dataclass(frozen=True)
class Job:
    """One unit of work for a site's agent: a scan or an egress check with its arguments."""

    kind: str
    site: str
    arguments: dict[str, Any] = field(default_factory=dict)
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def to_bytes(self) -> bytes:
        return json.dumps({"job_id": self.job_id, "kind": self.kind, "site": self.site,
                           "arguments": self.arguments}, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Job | None:
        """Parse a job message; None for anything that is not one (never an exception)."""
        if len(data) > MAX_JOB_BYTES:
            return None
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            return None
        if not isinstance(document, dict):
            return None
        kind, site, arguments, job_id = (document.get(k) for k in ("kind", "site", "arguments", "job_id"))
        if (kind not in JOB_KINDS or not isinstance(site, str) or not subjects.SITE_NAME.fullmatch(site)
                or not isinstance(arguments, dict) or not isinstance(job_id, str) or not 0 < len(job_id) <= 128):
            return None
        return cls(kind=kind, site=site, arguments=arguments, job_id=job_id)


def job_message_id(site: str, schedule: str, slot: str) -> str:
    """The ``Nats-Msg-Id`` of a scheduled job: one per (site, schedule, slot), so that a schedule
    fired twice for the same slot (a restart, two centres) queues the job once."""
    return f"{site}/{schedule}/{slot}"


@dataclass(frozen=True)
class Published:
    sequence: int
    duplicate: bool  # the server already had a message with this id: nothing was queued


async def publish_job(js: JetStreamContext, job: Job, *, message_id: str | None = None) -> Published:
    """Queue a job on its site's subject. ``message_id`` (default: the job id) de-duplicates."""
    subjects.check_site_name(job.site)
    ack = await js.publish(subjects.jobs_subject(job.site), job.to_bytes(),
                           headers={"Nats-Msg-Id": message_id or job.job_id})
    return Published(sequence=ack.seq, duplicate=bool(ack.duplicate))


class JobQueue:
    """A site agent's end of its durable pull consumer."""

    def __init__(self, subscription: JetStreamContext.PullSubscription) -> None:
        self._subscription = subscription

    @classmethod
    async def open(cls, js: JetStreamContext, site: str) -> JobQueue:
        subscription = await js.pull_subscribe_bind(durable=subjects.site_consumer(site), stream=subjects.JOBS_STREAM)
        return cls(subscription)

    async def fetch(self, timeout: float) -> list[Msg]:
        """Up to one job message, waiting at most ``timeout`` seconds; [] when none came. The
        caller acknowledges it (``msg.ack()``) when done, and sends ``msg.in_progress()`` while a
        long job runs, so that it is not redelivered to another attempt meanwhile."""
        try:
            return await self._subscription.fetch(1, timeout=timeout)
        except nats.errors.TimeoutError:
            return []

    async def close(self) -> None:
        await self._subscription.unsubscribe()


# --------------------------------------------------------------------------------------------
# Bundles


async def put_bundle(js: JetStreamContext, site: str, bundle_id: str, bundle: bytes, *,
                     message_id: str | None = None) -> bool:
    """Upload a bundle into the site's bucket (named by its id) and announce it to the merger.

    Idempotent: an object already there is not uploaded again, and the announcement carries the
    bundle id (or ``message_id``) as its ``Nats-Msg-Id``. Returns False when the object was
    already there. An agent sending a bundle again after a crash passes a fresh ``message_id``:
    the server would drop a second notice with the same id, and the merger must hear it to
    remove the object (the ledger makes the merge itself happen once).
    """
    store = await js.object_store(subjects.bundle_bucket(site))
    try:
        await store.get_info(bundle_id)
        uploaded = False
    except nats.js.errors.ObjectNotFoundError:
        await store.put(bundle_id, bundle)
        uploaded = True
    notice = json.dumps({"bundle_id": bundle_id, "site": site, "size": len(bundle)}, sort_keys=True).encode()
    await js.publish(subjects.notice_subject(site), notice, headers={"Nats-Msg-Id": message_id or bundle_id})
    return uploaded


async def get_bundle(js: JetStreamContext, site: str, bundle_id: str, *, max_bytes: int,
                     stall_timeout: float = 30.0) -> bytes:
    """Fetch a bundle's bytes from a site's bucket (the centre); InputError when it is missing,
    a link, too large or incomplete. The object and its meta were written by the site, so they are
    untrusted: the chunks are read here with a running byte count (nats-py's own ``get`` would
    follow a link into another bucket and gather any number of chunks the meta understates), and
    the bytes must still pass verify_bundle_bytes."""
    bucket = subjects.bundle_bucket(site)
    store = await js.object_store(bucket)
    where = f"bundle {bundle_id} of site {site!r}"
    try:
        info = await store.get_info(bundle_id)
    except nats.js.errors.ObjectNotFoundError:
        raise InputError(f"{where} is not in its bucket") from None
    except nats.js.errors.BadObjectMetaError:
        raise InputError(f"{where} has unreadable object metadata") from None
    if info.is_link() or not info.nuid:
        raise InputError(f"{where} is a link or has no content, not a bundle")
    if info.size is None or not 0 < info.size <= max_bytes:
        raise InputError(f"{where} is {info.size} bytes; bundles are 1 to {max_bytes} bytes (max_bundle_bytes)")
    subscription = await js.subscribe(f"$O.{bucket}.C.{info.nuid}", ordered_consumer=True)
    data = bytearray()
    try:
        while True:
            try:
                message = await subscription.next_msg(timeout=stall_timeout)
            except nats.errors.TimeoutError:
                raise InputError(f"{where} stopped arriving after {len(data)} bytes") from None
            data += message.data
            if len(data) > info.size:
                raise InputError(f"{where} holds more than the {info.size} bytes its metadata says")
            if message.metadata.num_pending == 0:
                break
    finally:
        await subscription.unsubscribe()
    if len(data) != info.size:
        raise InputError(f"{where} is incomplete: {len(data)} of {info.size} bytes")
    return bytes(data)


def parse_notice(subject: str, data: bytes) -> tuple[str, str] | None:
    """A bundle announcement as the merger receives it -> (site, bundle_id), or None.

    The site is taken from the subject (which the server lets only that site publish on), never
    from the body; a body naming another site is not a notice.
    """
    prefix = subjects.NOTICES_PREFIX + "."
    site = subject[len(prefix):] if subject.startswith(prefix) else ""
    if not subjects.SITE_NAME.fullmatch(site) or len(data) > 4096:
        return None
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.get("site") != site:
        return None
    bundle_id = document.get("bundle_id")
    if not isinstance(bundle_id, str) or len(bundle_id) != 64 or any(c not in "0123456789abcdef" for c in bundle_id):
        return None
    return site, bundle_id


# --------------------------------------------------------------------------------------------
# Heartbeats


@dataclass(frozen=True)
class Heartbeat:
    site: str
    agent_id: str
    version: str
    last_seen: datetime  # the server's receive time, never the agent's clock
    clock_offset: float  # seconds the agent's clock is ahead of the server's (negative: behind)


async def put_heartbeat(js: JetStreamContext, site: str, agent_id: str, version: str, *,
                        now: datetime | None = None) -> None:
    """Write this agent's heartbeat: its version and its own clock's time of sending."""
    sent_at = (now or datetime.now(UTC)).isoformat()
    value = json.dumps({"agent_id": agent_id, "site": site, "version": version, "sent_at": sent_at}).encode()
    bucket = await js.key_value(subjects.HEARTBEAT_BUCKET)
    await bucket.put(subjects.heartbeat_key(site, agent_id), value)


async def read_heartbeats(js: JetStreamContext) -> list[Heartbeat]:
    """Every agent's latest heartbeat (the centre). The offset is the agent's sending time minus
    the server's receive time: transit time included, so it is an upper bound of the skew."""
    bucket = await js.key_value(subjects.HEARTBEAT_BUCKET)
    try:
        keys = await bucket.keys()
    except nats.js.errors.NoKeysError:
        return []
    beats: list[Heartbeat] = []
    stream = f"KV_{subjects.HEARTBEAT_BUCKET}"
    for key in sorted(keys):
        try:
            message = await js.get_msg(stream, subject=f"$KV.{subjects.HEARTBEAT_BUCKET}.{key}")
        except nats.js.errors.NotFoundError:
            continue
        beat = _parse_heartbeat(key, message.data or b"", message.time)
        if beat is not None:
            beats.append(beat)
    return beats


def _parse_heartbeat(key: str, data: bytes, received: datetime | None) -> Heartbeat | None:
    site, _, agent_id = key.partition(".")
    if received is None or len(data) > MAX_HEARTBEAT_BYTES or not agent_id:
        return None
    try:
        document = json.loads(data)
        sent = datetime.fromisoformat(document["sent_at"])
        version = str(document["version"])[:64]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if sent.tzinfo is None:
        return None
    return Heartbeat(site=site, agent_id=agent_id, version=version, last_seen=received,
                     clock_offset=(sent - received).total_seconds())


# --------------------------------------------------------------------------------------------
# After a merge (the centre): the job's record for `fleet scan --wait`, the object's removal


async def record_merged(js: JetStreamContext, job_id: str, document: dict[str, Any]) -> None:
    """Record that a job's bundle was merged (key: the job id), for whoever waits on the job."""
    bucket = await js.key_value(subjects.MERGED_BUCKET)
    await bucket.put(_job_key(job_id), json.dumps(document, sort_keys=True).encode())


async def read_merged(js: JetStreamContext, job_id: str) -> dict[str, Any] | None:
    """The merge record of a job, or None while it has none."""
    bucket = await js.key_value(subjects.MERGED_BUCKET)
    try:
        entry = await bucket.get(_job_key(job_id))
    except (nats.js.errors.KeyNotFoundError, nats.js.errors.KeyDeletedError):
        return None
    try:
        document = json.loads(entry.value or b"")
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _job_key(job_id: str) -> str:
    # Job ids are UUIDs when the centre makes them; anything else is hashed into a valid key.
    if all(c.isalnum() or c in "-_" for c in job_id) and 0 < len(job_id) <= 128:
        return job_id
    return hashlib.sha256(job_id.encode()).hexdigest()


async def delete_bundle(js: JetStreamContext, site: str, bundle_id: str) -> None:
    """Remove a merged bundle's object from the site's bucket (its room is the site's quota); the
    agent takes its absence as "merged"."""
    store = await js.object_store(subjects.bundle_bucket(site))
    try:
        await store.delete(bundle_id)
    except (nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError):
        pass


async def bundle_present(js: JetStreamContext, site: str, bundle_id: str) -> bool:
    """Whether the site's bucket still holds the bundle (the agent's view: gone = merged)."""
    store = await js.object_store(subjects.bundle_bucket(site))
    try:
        info = await store.get_info(bundle_id)
    except (nats.js.errors.ObjectNotFoundError, nats.js.errors.ObjectDeletedError):
        return False
    return not info.deleted
