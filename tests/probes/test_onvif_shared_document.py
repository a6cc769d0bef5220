"""The ONVIF device WSDL is parsed once per process, however many devices are opened at once
(issue 15: 64 concurrent first opens each parsed their own copy, about 300 MB and 10 s)."""

from __future__ import annotations

import asyncio

import pytest

from camaudit.probes import onvif as onvif_probe


def test_concurrent_first_opens_share_one_parsed_document(monkeypatch: pytest.MonkeyPatch) -> None:
    from onvif import client as onvif_client

    # Start as a fresh process does: nothing parsed yet, in camaudit or in the library's cache.
    monkeypatch.setattr(onvif_probe, "_DOCUMENT", None)
    monkeypatch.setattr(onvif_client, "_DOCUMENT_CACHE", {})

    async def open_many() -> list[object]:
        return list(await asyncio.gather(*(onvif_probe._device_document() for _ in range(8))))

    documents = asyncio.run(open_many())
    assert len({id(d) for d in documents}) == 1
    # A later event loop (the scan runs one per stage) gets the same document, parsed no more.
    assert asyncio.run(onvif_probe._device_document()) is documents[0]
