"""The identity's JSON (DESIGN.md section 4, a contract) is written field by field: it must keep
every field of the dataclass, in the order declared, with the values ``dataclasses.asdict`` gave."""

from __future__ import annotations

import dataclasses

from camaudit.model import FieldEvidence, FieldSource, Identity, SignatureHit


def test_an_identity_is_written_whole_and_in_the_order_declared() -> None:
    identity = Identity(
        vendor="hikvision", brand="annke", device_type="nvr", model="N46PCK", firmware="V4.0.1 build 190531",
        serial="N46PCK2019AAWR1", confidence=0.87654, covered=True, advisories=["CVE-2021-36260"],
        signatures=[SignatureHit("hik-sadp", "sadp", "<ProbeMatch/>", None)], conflicts=["brand: annke or lorex"],
        fields={"model": FieldSource("N46PCK", [FieldEvidence("hik-sadp", "sadp", "<ProbeMatch/>", None,
                                                              "lineage: annke -> hikvision", "N46PCK ")])},
    )
    written = identity.to_json()
    assert list(written) == [f.name for f in dataclasses.fields(Identity)]
    expected = dataclasses.asdict(identity) | {
        "confidence": 0.877,
        "signatures": [{"id": "hik-sadp", "kind": "sadp", "value": "<ProbeMatch/>", "port": None}],
        "fields": {"model": {"value": "N46PCK", "evidence": [
            {"signature": "hik-sadp", "kind": "sadp", "observation": "<ProbeMatch/>", "port": None,
             "via": "lineage: annke -> hikvision", "as_sent": "N46PCK "}]}},
    }
    assert written == expected
    written["advisories"].append("CVE-0000-0000")
    assert identity.advisories == ["CVE-2021-36260"], "the document is a copy"
