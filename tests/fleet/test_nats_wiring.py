"""The JetStream wiring against a real nats-server: connect errors, retry, jobs, provisioning."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time

import pytest
from fleet_support import Fleet, free_port, needs_nats, start_server

from camaudit.errors import FleetAuthError, FleetUnavailable
from camaudit.fleet import subjects
from camaudit.fleet.nats import (
    Job,
    JobQueue,
    backoff_delays,
    connect,
    connect_with_retry,
    job_message_id,
    provision,
    publish_job,
)

HANG_LIMIT = 60.0  # seconds: proves "does not hang", never a speed claim


def test_wrong_password_is_one_clear_line(fleet: Fleet) -> None:
    wrong = dataclasses.replace(fleet.sites["pool"], password="not-the-password")
    with pytest.raises(FleetAuthError) as refused:
        asyncio.run(asyncio.wait_for(connect(wrong), HANG_LIMIT))
    message = str(refused.value)
    assert "\n" not in message
    assert "refused the credentials of site 'pool'" in message and "site-pool" in message
    assert "not-the-password" not in message and fleet.sites["pool"].password not in message


def test_wrong_password_is_not_retried(fleet: Fleet) -> None:
    wrong = dataclasses.replace(fleet.central, password="wrong")
    retries: list[int] = []
    with pytest.raises(FleetAuthError):
        asyncio.run(asyncio.wait_for(connect_with_retry(
            wrong, give_up_after=30, on_retry=lambda e, p, n: retries.append(n)), HANG_LIMIT))
    assert retries == []


@needs_nats
def test_unreachable_server_is_one_clear_line(tmp_path) -> None:
    from camaudit.fleet.config import init_fleet, load_site

    port = free_port()  # nothing listens there
    init_fleet(tmp_path / "f", ["pool"], server=f"nats://127.0.0.1:{port}")
    settings = load_site(tmp_path / "f" / "site-pool.toml")
    started = time.monotonic()
    with pytest.raises(FleetUnavailable) as unreachable:
        asyncio.run(asyncio.wait_for(connect(settings), HANG_LIMIT))
    assert time.monotonic() - started < HANG_LIMIT
    assert str(unreachable.value) == f"cannot reach the NATS server at nats://127.0.0.1:{port}: connection refused (is nats-server running?)"


@needs_nats
def test_agent_retries_with_backoff_until_the_server_comes(tmp_path) -> None:
    from camaudit.fleet.config import init_fleet, load_site

    port = free_port()
    init_fleet(tmp_path / "f", ["pool"], server=f"nats://127.0.0.1:{port}")
    settings = load_site(tmp_path / "f" / "site-pool.toml")
    settings = dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, retry_initial=0.2,
                                                                       retry_max=0.5))
    retries: list[tuple[str, float, int]] = []
    servers = []

    def on_retry(error: FleetUnavailable, pause: float, attempt: int) -> None:
        retries.append((str(error), pause, attempt))
        if attempt == 3:  # the server comes back while the agent waits
            servers.append(start_server(tmp_path / "f" / "nats-server.conf", port, tmp_path / "server.log"))

    async def main() -> bool:
        client = await connect_with_retry(settings, give_up_after=HANG_LIMIT, on_retry=on_retry)
        connected = client.is_connected
        await client.close()
        return connected

    try:
        assert asyncio.run(asyncio.wait_for(main(), HANG_LIMIT)) is True
    finally:
        for server in servers:
            server.stop()
    assert [n for _, _, n in retries][:3] == [1, 2, 3]
    assert all("connection refused" in text for text, _, _ in retries)


@needs_nats
def test_retry_gives_up_after_its_bound_and_says_so(tmp_path) -> None:
    from camaudit.fleet.config import init_fleet, load_site

    port = free_port()
    init_fleet(tmp_path / "f", ["pool"], server=f"nats://127.0.0.1:{port}")
    settings = load_site(tmp_path / "f" / "site-pool.toml")
    settings = dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, retry_initial=0.1,
                                                                       retry_max=0.2))
    with pytest.raises(FleetUnavailable) as gave_up:
        asyncio.run(asyncio.wait_for(connect_with_retry(settings, give_up_after=1.0, on_retry=lambda *a: None),
                                     HANG_LIMIT))
    assert "gave up after" in str(gave_up.value) and "connection refused" in str(gave_up.value)


def test_backoff_doubles_up_to_its_maximum_with_bounded_jitter() -> None:
    delays = backoff_delays(1.0, 8.0, random.Random(7))
    values = [next(delays) for _ in range(8)]
    bases = [1, 2, 4, 8, 8, 8, 8, 8]
    assert all(base <= value <= base * 1.2 for base, value in zip(bases, values, strict=True))


def test_a_double_fired_schedule_slot_queues_one_job(fleet: Fleet) -> None:
    async def main() -> None:
        central = await connect(fleet.central)
        js = central.jetstream(timeout=10)
        await provision(js, ["pool", "yard"], fleet.central.limits)
        await provision(js, ["pool", "yard"], fleet.central.limits)  # idempotent
        message_id = job_message_id("pool", "nightly", "2026-12-04T02:00Z")
        first = await publish_job(js, Job(kind="scan", site="pool"), message_id=message_id)
        second = await publish_job(js, Job(kind="scan", site="pool"), message_id=message_id)
        other_slot = await publish_job(js, Job(kind="scan", site="pool"),
                                       message_id=job_message_id("pool", "nightly", "2026-12-05T02:00Z"))
        assert (first.duplicate, second.duplicate, other_slot.duplicate) == (False, True, False)
        # The consumer's count of pending messages follows the stream's a moment later: wait for
        # it a bounded while (it once read 1 under a loaded machine).
        pending = -1
        for _ in range(50):
            pending = (await js.consumer_info(subjects.JOBS_STREAM, subjects.site_consumer("pool"))).num_pending
            if pending == 2:
                break
            await asyncio.sleep(0.05)
        assert pending == 2
        site = await connect(fleet.sites["pool"])
        queue = await JobQueue.open(site.jetstream(timeout=10), "pool")
        taken = []
        for _ in range(3):
            for message in await queue.fetch(timeout=2):
                taken.append(message)
                await message.ack()
        assert len(taken) == 2
        await site.close()
        await central.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


def test_an_unacknowledged_job_is_delivered_again(fleet: Fleet) -> None:
    """An agent that dies mid-job loses nothing: the job comes back after ack_wait."""

    async def main() -> None:
        limits = dataclasses.replace(fleet.central.limits, job_ack_wait=1.0)
        central = await connect(fleet.central)
        js = central.jetstream(timeout=10)
        await provision(js, ["pool"], limits)
        job = Job(kind="egress", site="pool")
        await publish_job(js, job)
        site = await connect(fleet.sites["pool"])
        queue = await JobQueue.open(site.jetstream(timeout=10), "pool")
        first = await queue.fetch(timeout=5)
        assert [Job.from_bytes(m.data) for m in first] == [job]
        # no ack: the agent "died"
        again: list = []
        deadline = time.monotonic() + 30
        while not again and time.monotonic() < deadline:
            again = await queue.fetch(timeout=2)
        assert [Job.from_bytes(m.data) for m in again] == [job]
        assert again[0].metadata.num_delivered == 2
        await again[0].ack()
        await site.close()
        await central.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


@pytest.mark.parametrize("data", [b"", b"not json", b"[]", b'{"kind": "scan"}', b"{" * 5000,
                                  b'{"kind":"scan","site":"Pool.x","arguments":{},"job_id":"1"}',
                                  b'{"kind":"rm","site":"pool","arguments":{},"job_id":"1"}',
                                  b"x" * 70000])
def test_a_job_message_that_is_not_one_parses_to_none(data: bytes) -> None:
    assert Job.from_bytes(data) is None


def test_heartbeats_take_last_seen_from_the_server_and_measure_the_agents_clock(fleet: Fleet) -> None:
    from datetime import UTC, datetime, timedelta

    from camaudit.fleet.nats import put_heartbeat, read_heartbeats

    async def main() -> None:
        central = await connect(fleet.central)
        js = central.jetstream(timeout=10)
        await provision(js, ["pool", "yard"], fleet.central.limits)
        site = await connect(fleet.sites["yard"])
        skewed = datetime.now(UTC) + timedelta(minutes=10)  # the agent's clock runs 10 minutes fast
        before = datetime.now(UTC)
        await put_heartbeat(site.jetstream(timeout=10), "yard", "agent-2", "0.2.0", now=skewed)
        [beat] = await read_heartbeats(js)
        assert (beat.site, beat.agent_id, beat.version) == ("yard", "agent-2", "0.2.0")
        assert 590 < beat.clock_offset < 610
        assert abs((beat.last_seen - before).total_seconds()) < 30  # the server's time, not the agent's
        await site.close()
        await central.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


def test_a_long_running_client_reconnects_when_the_server_comes_back(fleet: Fleet, tmp_path) -> None:
    async def main() -> None:
        central = await connect(fleet.central)
        await provision(central.jetstream(timeout=10), ["pool"], fleet.central.limits)
        await central.close()
        settings = dataclasses.replace(fleet.sites["pool"], limits=dataclasses.replace(
            fleet.sites["pool"].limits, retry_initial=0.2))
        client = await connect(settings, reconnect=True)
        fleet.server.stop()
        deadline = time.monotonic() + 20
        while client.is_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not client.is_connected
        fleet.server = start_server(fleet.directory / "nats-server.conf", fleet.server.port, tmp_path / "again.log")
        deadline = time.monotonic() + 30
        while not client.is_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert client.is_connected
        # and it works: the site can still reach its own consumer
        info = await client.jetstream(timeout=10).consumer_info(subjects.JOBS_STREAM, subjects.site_consumer("pool"))
        assert info.num_pending == 0
        await client.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


@needs_nats
def test_an_agent_waiting_for_the_server_says_so_in_its_log(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from camaudit.fleet.config import init_fleet, load_site

    port = free_port()
    init_fleet(tmp_path / "f", ["pool"], server=f"nats://127.0.0.1:{port}")
    settings = load_site(tmp_path / "f" / "site-pool.toml")
    settings = dataclasses.replace(settings, limits=dataclasses.replace(settings.limits, retry_initial=0.1,
                                                                       retry_max=0.1))
    with caplog.at_level(logging.WARNING, logger="camaudit"), pytest.raises(FleetUnavailable):
        asyncio.run(asyncio.wait_for(connect_with_retry(settings, give_up_after=0.5), HANG_LIMIT))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("connection refused" in w and "retrying in" in w for w in warnings)
    assert all(settings.password not in w for w in warnings)
