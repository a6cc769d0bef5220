"""The centre reads bundles that sites wrote: a site's own bucket may hold crafted objects.

A site may publish any chunk or meta message into its own bucket (its permissions allow
``$O.bundles-<site>.>``), so the meta can lie about the size, or be a link into another site's
bucket. get_bundle must refuse these, bounded in bytes and time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import pytest
from fleet_support import Fleet

from camaudit.errors import InputError
from camaudit.fleet import subjects
from camaudit.fleet.nats import connect, get_bundle, parse_notice, provision, put_bundle

HANG_LIMIT = 60.0


async def _setup(fleet: Fleet) -> tuple[Any, Any, Any, Any]:
    central = await connect(fleet.central)
    js = central.jetstream(timeout=10)
    await provision(js, ["pool", "yard"], fleet.central.limits)
    site = await connect(fleet.sites["pool"])
    return central, js, site, site.jetstream(timeout=10)


async def _crafted_object(site_js: Any, name: str, chunks: list[bytes], meta: dict[str, Any]) -> None:
    bucket = subjects.bundle_bucket("pool")
    for chunk in chunks:
        await site_js.publish(f"$O.{bucket}.C.{meta['nuid']}", chunk)
    encoded = base64.urlsafe_b64encode(name.encode()).decode()
    await site_js.publish(f"$O.{bucket}.M.{encoded}", json.dumps({"name": name, "bucket": bucket, **meta}).encode(),
                          headers={"Nats-Rollup": "sub"})


def test_an_object_larger_than_its_meta_says_is_refused(fleet: Fleet) -> None:
    async def main() -> None:
        central, js, site, site_js = await _setup(fleet)
        chunks = [b"x" * 100_000 for _ in range(5)]
        name = "a" * 64
        await _crafted_object(site_js, name, chunks, {"nuid": "LIAR", "size": 1000, "chunks": 1,
                                                      "digest": "SHA-256=" + base64.urlsafe_b64encode(
                                                          hashlib.sha256(b"".join(chunks)).digest()).decode()})
        with pytest.raises(InputError, match="holds more than the 1000 bytes"):
            await get_bundle(js, "pool", name, max_bytes=10**9)
        await site.close()
        await central.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


def test_a_link_into_another_sites_bucket_is_refused(fleet: Fleet) -> None:
    async def main() -> None:
        central, js, site, site_js = await _setup(fleet)
        yard = await connect(fleet.sites["yard"])
        real = b"yard's real bundle" * 10
        real_id = hashlib.sha256(real).hexdigest()
        await put_bundle(yard.jetstream(timeout=10), "yard", real_id, real)
        name = "b" * 64
        await _crafted_object(site_js, name, [], {"nuid": "LINK", "size": 0, "chunks": 0, "options": {
            "link": {"bucket": subjects.bundle_bucket("yard"), "name": real_id}}})
        with pytest.raises(InputError, match="is a link"):
            await get_bundle(js, "pool", name, max_bytes=10**9)
        for client in (yard, site, central):
            await client.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


def test_an_object_over_the_limit_or_missing_is_refused_before_reading(fleet: Fleet) -> None:
    async def main() -> None:
        central, js, site, site_js = await _setup(fleet)
        data = b"z" * 5000
        bundle_id = hashlib.sha256(data).hexdigest()
        await put_bundle(site_js, "pool", bundle_id, data)
        assert await get_bundle(js, "pool", bundle_id, max_bytes=5000) == data
        with pytest.raises(InputError, match="bundles are 1 to 4999 bytes"):
            await get_bundle(js, "pool", bundle_id, max_bytes=4999)
        with pytest.raises(InputError, match="is not in its bucket"):
            await get_bundle(js, "pool", "c" * 64, max_bytes=5000)
        await site.close()
        await central.close()

    asyncio.run(asyncio.wait_for(main(), HANG_LIMIT))


@pytest.mark.parametrize(("subject", "data", "expected"), [
    ("camaudit.bundles.pool", json.dumps({"site": "pool", "bundle_id": "a" * 64}).encode(), ("pool", "a" * 64)),
    ("camaudit.bundles.pool", json.dumps({"site": "yard", "bundle_id": "a" * 64}).encode(), None),
    ("camaudit.bundles.pool", json.dumps({"site": "pool", "bundle_id": "../x"}).encode(), None),
    ("camaudit.bundles.pool", json.dumps({"site": "pool", "bundle_id": "A" * 64}).encode(), None),
    ("camaudit.bundles.Pool", json.dumps({"site": "Pool", "bundle_id": "a" * 64}).encode(), None),
    ("camaudit.jobs.pool", json.dumps({"site": "pool", "bundle_id": "a" * 64}).encode(), None),
    ("camaudit.bundles.pool", b"[" * 3000, None),
    ("camaudit.bundles.pool", b"\xff", None),
])
def test_a_notice_names_its_sender_site_and_a_bundle_id_or_is_none(subject: str, data: bytes, expected: Any) -> None:
    assert parse_notice(subject, data) == expected
