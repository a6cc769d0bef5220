"""The centre (`camaudit central serve`): provision the fleet, watch bundle notices, fetch,
verify, merge, and only then acknowledge.

For each notice on ``camaudit.bundles.<site>`` (pulled through the durable consumer ``merger``):

1. the site is the subject's (only that site may publish there); a notice that is not one, or of
   a site the centre's file does not list, is dropped with a warning;
2. a bundle already in the ledger is acknowledged at once (a redelivery changes nothing);
3. the object is fetched with a byte bound and verified against that site's keys; a refused
   bundle is dropped with the reason on stderr (and left in the bucket for inspection);
4. the bundle is merged in one transaction with its ledger row, then identified and assessed;
5. the job's merge is recorded (for `fleet scan --wait`), the object removed from the bucket (the
   agent takes that as "merged"), and the notice acknowledged.

A merger killed anywhere before 5 loses nothing: the notice is redelivered after
``job_ack_wait``, and step 2 or 4 finds the ledger as the kill left it (SQLite's transaction is
all or nothing). A full disk leaves the notice unacknowledged (``nak`` with a delay): the bundle
is merged when there is room.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from ..errors import BundleRefused, CamauditError, ConfigError, FleetAuthError, FleetUnavailable, InputError, StoreError
from ..store import Store, open_store
from ..store import bundles as stored_bundles
from . import subjects
from .bundle import verify_bundle_bytes
from .config import CentralSettings
from .merge import finalise_merged, merge_verified
from .nats import backoff_delays, connect_with_retry, delete_bundle, get_bundle, parse_notice, provision, record_merged

log = logging.getLogger(__name__)

#: Seconds a merge holds its transaction open before committing, for the kill-mid-merge test
#: only (a positive number in this environment variable); never set in use.
MERGE_PAUSE_ENV = "CAMAUDIT_TEST_MERGE_PAUSE"


@dataclass
class CentralState:
    merged: int = 0
    already: int = 0
    refused: int = 0


class Central:
    def __init__(self, settings: CentralSettings, db_path: str | Path, *, policy_path: str | None = None,
                 stop: asyncio.Event | None = None, say: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.db_path = str(db_path)
        self.policy_path = policy_path
        self.stop = stop or asyncio.Event()
        self.say = say or (lambda line: log.warning("%s", line))
        self.state = CentralState()

    async def run(self) -> None:
        with open_store(self.db_path) as store:
            done = finalise_merged(store, policy_path=self.policy_path)
            if done:
                self.say(f"finished identifying and assessing {len(done)} merged run(s) left by a stopped merger")
        delays = backoff_delays(self.settings.limits.retry_initial, self.settings.limits.retry_max)
        while not self.stop.is_set():
            try:
                await self._session()
                delays = backoff_delays(self.settings.limits.retry_initial, self.settings.limits.retry_max)
            except (FleetAuthError, ConfigError):
                raise
            except (FleetUnavailable, OSError, nats.errors.Error, TimeoutError) as exc:
                pause = next(delays)
                self.say(f"the NATS server at {self.settings.server} is unreachable ({str(exc)[:200]}); "
                         f"retrying in {pause:.0f} s")
                await self._sleep(pause)

    async def _session(self) -> None:
        connecting = asyncio.ensure_future(connect_with_retry(self.settings, name="camaudit central",
                                                              reconnect=False))
        stopper = asyncio.ensure_future(self.stop.wait())
        done, _ = await asyncio.wait({connecting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if connecting not in done:
            connecting.cancel()
            return
        stopper.cancel()
        client = connecting.result()
        try:
            js = client.jetstream(timeout=self.settings.limits.request_timeout)
            await provision(js, sorted(self.settings.sites), self.settings.limits)
            subscription = await js.pull_subscribe_bind(durable=subjects.MERGER_CONSUMER,
                                                        stream=subjects.NOTICES_STREAM)
            self.say(f"central merger connected to {self.settings.server}; merging into {self.db_path}")
            with open_store(self.db_path) as store:
                while not self.stop.is_set():
                    if client.is_closed or not client.is_connected:
                        raise FleetUnavailable("the connection to the NATS server was lost")
                    try:
                        messages = await subscription.fetch(1, timeout=1.0)
                    except nats.errors.TimeoutError:
                        continue
                    for message in messages:
                        await self._handle(js, store, message)
        finally:
            try:
                await asyncio.wait_for(client.close(), timeout=5)
            except (TimeoutError, nats.errors.Error, OSError):
                pass

    async def _handle(self, js: JetStreamContext, store: Store, message: Msg) -> None:
        parsed = parse_notice(message.subject, message.data)
        if parsed is None:
            self.say(f"dropped a message on {message.subject[:80]} that is not a bundle notice")
            await message.term()
            return
        site, bundle_id = parsed
        if site not in self.settings.sites:
            self.say(f"dropped bundle {bundle_id[:16]} of site {site!r}, which {self.settings.path} does not list")
            await message.term()
            return
        if stored_bundles.merged_bundle(store, bundle_id) is not None:
            await self._after_merge(js, store, site, bundle_id)
            await message.ack_sync(timeout=self.settings.limits.request_timeout)
            self.state.already += 1
            return
        try:
            data = await get_bundle(js, site, bundle_id, max_bytes=self.settings.limits.max_bundle_bytes,
                                    stall_timeout=self.settings.limits.request_timeout)
            verified = verify_bundle_bytes(data, self.settings.sites, max_bytes=self.settings.limits.max_bundle_bytes)
            if verified.manifest.site != site:
                raise BundleRefused("wrong_site", f"a bundle of site {verified.manifest.site!r} was sent by site "
                                                  f"{site!r}")
            self.say(f"merging bundle {bundle_id[:16]} of site {site} ({verified.manifest.kind} job "
                     f"{verified.manifest.job_id or 'none'})")
            outcome = merge_verified(store, verified, before_commit=_merge_pause())
        except InputError as refused:  # BundleRefused included
            self.state.refused += 1
            self.say(f"refused bundle {bundle_id[:16]} of site {site}: {refused}")
            await message.term()
            return
        except StoreError as exc:
            self.say(f"could not merge bundle {bundle_id[:16]} of site {site}: {exc}; it stays queued")
            await message.nak(delay=self.settings.limits.retry_max)
            return
        try:
            finalise_merged(store, policy_path=self.policy_path)
        except CamauditError as exc:
            self.say(f"bundle {bundle_id[:16]} is merged, but identifying and assessing it failed: {exc} "
                     "(retried at the next merge or start)")
        await self._after_merge(js, store, site, bundle_id)
        await message.ack_sync(timeout=self.settings.limits.request_timeout)
        self.state.merged += 1
        self.say(f"merged bundle {bundle_id[:16]} of site {site}: {outcome.kind} {outcome.run_id}")

    async def _after_merge(self, js: JetStreamContext, store: Store, site: str, bundle_id: str) -> None:
        entry = stored_bundles.merged_bundle(store, bundle_id)
        if entry is not None and entry.get("job_id"):
            await record_merged(js, str(entry["job_id"]), {
                "job_id": entry["job_id"], "site": site, "kind": entry["kind"], "bundle_id": bundle_id,
                "scan_id": entry["run_id"] if entry["kind"] == "scan" else None,
                "egress_run_id": entry["run_id"] if entry["kind"] == "egress" else None,
                "merged_at": entry["merged_at"]})
        try:
            await delete_bundle(js, site, bundle_id)
        except (nats.errors.Error, nats.js.errors.Error) as exc:
            log.debug("could not remove bundle %s from its bucket: %s", bundle_id, exc)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            pass


def _merge_pause() -> Callable[[], None] | None:
    text = os.environ.get(MERGE_PAUSE_ENV)
    if not text:
        return None
    seconds = float(text)

    def pause() -> None:
        log.warning("holding the merge open for %g s (%s)", seconds, MERGE_PAUSE_ENV)
        time.sleep(seconds)

    return pause
