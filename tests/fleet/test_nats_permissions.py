"""Least privilege, enforced by a real nats-server configured by `camaudit fleet init`.

Each site's credentials can pull and acknowledge its own jobs, put into its own bundle bucket,
announce its own bundles and write its own heartbeat; the same operations on the other site's
names are refused by the server (a "Permissions Violation" it reports), and the centre then sees
the other site's data untouched.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

import nats.errors
import nats.js.errors
from fleet_support import Fleet, needs_nats

from camaudit.fleet import subjects
from camaudit.fleet.nats import (
    Job,
    JobQueue,
    connect,
    get_bundle,
    provision,
    publish_job,
    put_bundle,
    put_heartbeat,
    read_heartbeats,
)

pytestmark = needs_nats
REFUSED_WAIT = 3.0  # seconds a refused request waits for the answer that never comes


async def _provisioned(fleet: Fleet) -> Any:
    central = await connect(fleet.central)
    js = central.jetstream(timeout=10)
    await provision(js, sorted(fleet.central.sites), fleet.central.limits)
    return central, js


async def _site(fleet: Fleet, site: str) -> tuple[Any, Any, list[str]]:
    errors: list[str] = []
    client = await connect(fleet.sites[site], on_error=lambda e: errors.append(str(e)))
    return client, client.jetstream(timeout=REFUSED_WAIT), errors


async def _refused(*actions: Callable[[], Awaitable[Any]]) -> None:
    """Each action must fail: the server drops a refused request, so it ends in a timeout.
    They run together, so that the test waits for one timeout rather than one per action."""
    results = await asyncio.gather(*(asyncio.wait_for(a(), timeout=REFUSED_WAIT * 3) for a in actions),
                                   return_exceptions=True)
    for result in results:
        assert isinstance(result, nats.errors.TimeoutError | nats.errors.Error | asyncio.TimeoutError
                          | nats.js.errors.Error), f"not refused: {result!r}"


def _violation(errors: list[str], kind: str, subject: str) -> bool:
    """Did the server report refusing this? (nats-py lower-cases the server's -ERR text.)"""
    wanted = f"permissions violation for {kind} to \"{subject}\"".lower()
    return any(wanted in e.lower() for e in errors)


def test_each_site_can_use_its_own_queue_bucket_and_heartbeat(fleet: Fleet) -> None:
    async def main() -> None:
        central, js = await _provisioned(fleet)
        client, site_js, errors = await _site(fleet, "pool")
        site_js = client.jetstream(timeout=10)
        job = Job(kind="scan", site="pool", arguments={"targets": ["10.0.0.0/24"]})
        await publish_job(js, job)
        queue = await JobQueue.open(site_js, "pool")
        messages = await queue.fetch(timeout=10)
        assert [Job.from_bytes(m.data) for m in messages] == [job]
        await messages[0].in_progress()
        await messages[0].ack()
        bundle = b"not verified here" * 1000
        bundle_id = hashlib.sha256(bundle).hexdigest()
        assert await put_bundle(site_js, "pool", bundle_id, bundle) is True
        assert await put_bundle(site_js, "pool", bundle_id, bundle) is False  # idempotent
        await put_heartbeat(site_js, "pool", "agent-1", "0.1.0")
        # The centre sees all of it.
        assert await get_bundle(js, "pool", bundle_id, max_bytes=10**6) == bundle
        beats = await read_heartbeats(js)
        assert [(b.site, b.agent_id, b.version) for b in beats] == [("pool", "agent-1", "0.1.0")]
        assert abs(beats[0].clock_offset) < 60
        notices = await js.pull_subscribe_bind(durable=subjects.MERGER_CONSUMER, stream=subjects.NOTICES_STREAM)
        announced = await notices.fetch(5, timeout=5)
        assert len(announced) == 1 and bundle_id.encode() in announced[0].data  # announced once
        consumer = await js.consumer_info(subjects.JOBS_STREAM, subjects.site_consumer("pool"))
        assert consumer.num_pending == 0 and consumer.num_ack_pending == 0
        assert errors == []
        await client.close()
        await central.close()

    asyncio.run(main())


def test_a_site_cannot_read_or_take_the_other_sites_jobs(fleet: Fleet) -> None:
    async def main() -> None:
        central, js = await _provisioned(fleet)
        job = Job(kind="scan", site="yard", arguments={"targets": ["10.0.0.1"]})
        await publish_job(js, job)
        client, site_js, errors = await _site(fleet, "pool")
        queue = await JobQueue.open(site_js, "yard")
        assert await queue.fetch(timeout=REFUSED_WAIT) == []
        await _refused(lambda: site_js.consumer_info(subjects.JOBS_STREAM, subjects.site_consumer("yard")),
                       lambda: site_js.get_msg(subjects.JOBS_STREAM, seq=1))
        # Subscriptions are refused by the server after the fact: watch that nothing arrives.
        snooped: list[bytes] = []

        async def snoop(message: Any) -> None:
            snooped.append(message.data)

        await client.subscribe(f"{subjects.site_inbox('yard')}.>", cb=snoop)
        await client.subscribe(subjects.jobs_subject("yard"), cb=snoop)
        await client.flush(timeout=5)
        await asyncio.sleep(0.5)  # the server's -ERR lines arrive asynchronously
        assert _violation(errors, "Publish", f"$JS.API.CONSUMER.MSG.NEXT.{subjects.JOBS_STREAM}.site-yard")
        assert _violation(errors, "Publish", f"$JS.API.CONSUMER.INFO.{subjects.JOBS_STREAM}.site-yard")
        assert _violation(errors, "Publish", f"$JS.API.STREAM.MSG.GET.{subjects.JOBS_STREAM}")
        assert _violation(errors, "Subscription", "_INBOX_site-yard.>")
        assert _violation(errors, "Subscription", "camaudit.jobs.yard")
        # yard's job is still there for yard, and its delivery to yard's inbox is not seen by pool.
        consumer = await js.consumer_info(subjects.JOBS_STREAM, subjects.site_consumer("yard"))
        assert consumer.num_pending == 1
        yard, _, _ = await _site(fleet, "yard")
        messages = await (await JobQueue.open(yard.jetstream(timeout=10), "yard")).fetch(timeout=10)
        assert [Job.from_bytes(m.data) for m in messages] == [job]
        await messages[0].ack()
        await publish_job(js, Job(kind="scan", site="yard"))
        await asyncio.sleep(0.5)
        assert snooped == []
        for c in (client, yard, central):
            await c.close()

    asyncio.run(main())


def test_a_site_cannot_write_the_other_sites_bundles_or_heartbeat(fleet: Fleet) -> None:
    async def main() -> None:
        central, js = await _provisioned(fleet)
        client, site_js, errors = await _site(fleet, "pool")
        bundle = b"forged" * 100
        bundle_id = hashlib.sha256(bundle).hexdigest()
        await _refused(
            lambda: put_bundle(site_js, "yard", bundle_id, bundle),
            lambda: site_js.publish(f"$O.{subjects.bundle_bucket('yard')}.C.forged", bundle),
            lambda: site_js.publish(subjects.notice_subject("yard"), b"{}"),
            lambda: site_js.publish(f"$KV.{subjects.HEARTBEAT_BUCKET}.yard.agent-x", b"{}"),
            lambda: put_heartbeat(site_js, "yard", "agent-x", "0.1.0"),
            # Nor may a site queue jobs, or create or purge anything.
            lambda: site_js.publish(subjects.jobs_subject("pool"), b"{}"),
            lambda: site_js.add_stream(name="EVIL", subjects=["evil.>"]),
            lambda: site_js.purge_stream(subjects.bundle_stream("pool")),
        )
        await client.flush(timeout=5)
        await asyncio.sleep(0.5)
        assert _violation(errors, "Publish", "$JS.API.STREAM.INFO.OBJ_bundles-yard")
        assert _violation(errors, "Publish", "$O.bundles-yard.C.forged")
        assert _violation(errors, "Publish", "camaudit.bundles.yard")
        assert _violation(errors, "Publish", "$KV.camaudit-heartbeats.yard.agent-x")
        assert _violation(errors, "Publish", "camaudit.jobs.pool")
        assert _violation(errors, "Publish", "$JS.API.STREAM.CREATE.EVIL")
        assert _violation(errors, "Publish", "$JS.API.STREAM.PURGE.OBJ_bundles-pool")
        # The centre sees nothing of it.
        yard_stream = await js.stream_info(subjects.bundle_stream("yard"))
        assert yard_stream.state.messages == 0
        notices = await js.stream_info(subjects.NOTICES_STREAM)
        assert notices.state.messages == 0
        jobs = await js.stream_info(subjects.JOBS_STREAM)
        assert jobs.state.messages == 0
        assert await read_heartbeats(js) == []
        await client.close()
        await central.close()

    asyncio.run(main())


def test_a_site_named_central_cannot_hear_the_centres_replies(tmp_path) -> None:
    from fleet_support import free_port, start_server

    from camaudit.fleet.config import init_fleet, load_central, load_site

    port = free_port()
    init_fleet(tmp_path / "f", ["central", "pool"], server=f"nats://127.0.0.1:{port}")
    server = start_server(tmp_path / "f" / "nats-server.conf", port, tmp_path / "server.log")

    async def main() -> None:
        centre = await connect(load_central(tmp_path / "f" / "central.toml"))
        errors: list[str] = []
        site = await connect(load_site(tmp_path / "f" / "site-central.toml"), on_error=lambda e: errors.append(str(e)))
        heard: list[bytes] = []

        async def listen(message: Any) -> None:
            heard.append(message.data)

        await site.subscribe(f"{subjects.CENTRAL_INBOX}.>", cb=listen)
        await site.flush(timeout=5)
        js = centre.jetstream(timeout=10)
        await provision(js, ["central", "pool"], load_central(tmp_path / "f" / "central.toml").limits)
        await js.stream_info(subjects.JOBS_STREAM)  # a reply to the centre's inbox
        await asyncio.sleep(0.5)
        assert heard == []
        assert _violation(errors, "Subscription", f"{subjects.CENTRAL_INBOX}.>")
        # and the site's own inbox is its own: it can still use its queue
        await JobQueue.open(site.jetstream(timeout=10), "central")
        await site.close()
        await centre.close()

    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    finally:
        server.stop()
