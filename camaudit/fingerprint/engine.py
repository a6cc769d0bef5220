"""Observations -> one device identity (DESIGN.md section 4).

How evidence combines:

* Every observation (and every part derived from it: the Server header inside a raw response,
  the title inside a body) is read by the signature files of its kind; per file the first
  matching signature counts (:mod:`.signatures`).
* Each maker's score is the noisy-OR of the certainties of the distinct signatures that name it:
  agreeing signals add up, one signature seen twice counts once.
* Weak kinds of evidence (an OUI, a favicon hash, a page title, an open port) only hint: a maker
  named by nothing else stays under ``WEAK_ONLY_CAP`` however many such hints agree. Agreeing
  hints still raise the score, but only toward the cap (see :func:`_weak_only_score`).
* A strong signature (certainty >= 0.9: a SADP or DHIP reply, an ISAPI namespace, structured
  ONVIF device information, a Dahua CGI answer) decides the maker on its own.
* Signals naming another maker are reported in ``conflicts`` and lower the confidence:
  ``confidence = score(winner) * (1 - 0.5 * score(strongest other))``. Without a strong signal,
  makers scored within 0.05 of each other leave the device ``unknown``; so do two makers each
  named by an equally strong signal.
* A brand comes from signatures that name one (an OUI registered by Lorex, an ONVIF Manufacturer).
  When such a signature names no maker itself, the OEM lineage (signatures/lineage.yaml) names the
  maker behind the brand, at the signature's own certainty and with the lineage as evidence: a
  Lorex OUI alone is a weak hint of "dahua, brand lorex", not a brand without a maker. A brand
  whose lineage maker is not established (ANNKE, Swann) or only inferred (CP PLUS, Intelbras)
  names no maker. A brand whose lineage
  points at another maker than the winner is a conflict.
* Model, firmware, serial and device type come from the winning maker's signatures, by source
  (for the model: SADP, DHIP, ISAPI and CGI documents, then ONVIF device information, then the
  ONVIF hardware scope, then anything else, page titles last), then by certainty.
  ``covered`` and ``advisories`` follow from the result.
* ``Identity.fields`` lists, per field, the value and every signature and observation behind it.

A device the evidence does not name stays ``unknown`` with confidence 0: never a guess shown as fact.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..model import MAX_OBSERVATION_VALUE, FieldEvidence, FieldSource, Identity, Observation, SignatureHit
from .advisories import advisories_for
from .lineage import covered, lineage
from .signatures import STRONG, WEAK_KINDS, Signature, SignatureSet, default_set

log = logging.getLogger(__name__)

#: How much the strongest contradicting maker lowers the winner's confidence.
CONFLICT_WEIGHT = 0.5
#: A maker named only by weak kinds of evidence scores below this (an auditor reads < 0.5 as
#: "a hint, not an identification").
WEAK_ONLY_CAP = 0.5
#: Scores closer than this, with no strong signal, leave the maker undecided.
TIE_MARGIN = 0.05
#: Longest observation value quoted in an identity's signature list.
QUOTE_LIMIT = 300
#: Values up to this length are cached with their matches (fleets repeat banners and login
#: pages). Many values of a scan are never seen twice (a Date header, a nonce), so the cache is
#: bounded by what it holds, not by the devices identified (issue 15): two generations of at
#: most _CACHE_CHARS characters each; when the newer one is full it becomes the older one, and a
#: value found in the older one moves to the newer, so what repeats stays.
_CACHE_VALUE_LIMIT = 4096
_CACHE_CHARS = 1_000_000

_FIELDS = ("model", "firmware", "serial", "device_type")
#: Where a field is taken from first (lower is stronger); kinds not listed rank 3. The device's
#: own management documents outrank the ONVIF answers, which outrank free text.
_SOURCE_RANK = {
    "sadp": 0, "dhip": 0, "isapi_device_info": 0, "dahua_cgi": 0,
    "onvif_device_info": 1,
    "onvif_probe_match": 2,
    "http_title": 4,
}

MatchList = tuple[tuple[str, Signature, dict[str, str]], ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One signature that matched one observation (possibly through a derived part)."""

    signature: Signature
    fields: dict[str, str]
    observation: Observation
    #: How the vendor was reached when the signature named only a brand (the lineage entry).
    via: str | None = None


class Engine:
    """Identification with one compiled signature set and a bounded match cache."""

    def __init__(self, signatures: SignatureSet | None = None) -> None:
        self.signatures = signatures if signatures is not None else default_set()
        self._cache: dict[tuple[str, str], MatchList] = {}
        self._older: dict[tuple[str, str], MatchList] = {}
        self._cached_chars = 0

    def matches(self, kind: str, value: str) -> MatchList:
        # Observations are already cut to this size; a caller passing raw text is cut the same
        # way, so no regex ever scans more device-controlled text than an observation holds.
        value = value[:MAX_OBSERVATION_VALUE]
        key = (kind, value)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        found = self._older.pop(key, None)
        if found is None:
            found = tuple(self.signatures.match_value(kind, value))
        if len(value) <= _CACHE_VALUE_LIMIT:
            if self._cached_chars + len(value) > _CACHE_CHARS:
                self._older, self._cache = self._cache, {}
                self._cached_chars = 0
            self._cache[key] = found
            self._cached_chars += len(value)
        return found

    def hits(self, observations: Iterable[Observation]) -> list[Hit]:
        result = []
        for observation in observations:
            for _kind, signature, fields in self.matches(observation.kind, observation.value):
                result.append(_with_lineage_maker(Hit(signature, fields, observation)))
        return result

    def identify(self, observations: Sequence[Observation]) -> Identity:
        return decide(self.hits(observations))


def _with_lineage_maker(hit: Hit) -> Hit:
    """A hit naming a brand but no maker gets the brand's lineage maker, saying so (``via``)."""
    brand = hit.fields.get("brand")
    if not brand or hit.fields.get("vendor"):
        return hit
    entry = lineage().names.get(brand)
    # An inferred lineage (CP PLUS, Intelbras: "OEM (inferred)") is not evidence enough to name a
    # maker: such brands also sell other makers' products (an Intelbras router is no Dahua device).
    if entry is None or entry.maker is None or "inferred" in entry.relation:
        return hit
    via = f"lineage: {brand} -> {entry.maker} ({entry.relation}; {entry.source})"
    return Hit(hit.signature, {**hit.fields, "vendor": entry.maker}, hit.observation, via)


def decide(hits: Sequence[Hit]) -> Identity:
    """Combine signature hits into one identity (the rules in the module docstring)."""
    best: dict[str, dict[str, float]] = {}  # vendor -> signature id -> certainty
    for hit in hits:
        vendor = hit.fields.get("vendor")
        if vendor:
            per_vendor = best.setdefault(vendor, {})
            per_vendor[hit.signature.id] = max(per_vendor.get(hit.signature.id, 0.0), hit.signature.certainty)
    weak_only = {vendor: True for vendor in best}
    for hit in hits:
        vendor = hit.fields.get("vendor")
        if vendor and hit.signature.kind not in WEAK_KINDS:
            weak_only[vendor] = False
    scores = {
        vendor: _weak_only_score(sigs.values()) if weak_only[vendor] else _noisy_or(sigs.values())
        for vendor, sigs in best.items()
    }
    strong = {h.fields["vendor"] for h in hits if h.fields.get("vendor") and h.signature.strong}
    identity = Identity()
    winner = _winner(scores, strong, best)
    if winner is not None:
        others = [score for vendor, score in scores.items() if vendor != winner]
        other = max(others, default=0.0)
        identity.vendor = winner
        identity.confidence = scores[winner] * (1.0 - CONFLICT_WEIGHT * other)
    identity.conflicts = _conflicts(hits, identity.vendor, scores)
    used = _fill_fields(identity, hits)
    _fill_brand(identity, hits, used)
    # One quote of each observation, shared by every signature and field it backs (issue 15:
    # a SADP answer behind five fields was five copies, kept for the result of a whole scan).
    quotes: dict[str, str] = {}
    identity.signatures = _signature_list(used, quotes)
    identity.fields = _field_sources(identity, hits, used, quotes)
    known_vendor = identity.vendor if identity.vendor != "unknown" else None
    identity.covered = covered().is_covered(known_vendor, identity.brand)
    identity.advisories = advisories_for(known_vendor, identity.model, identity.firmware)
    identity.confidence = round(min(max(identity.confidence, 0.0), 1.0), 3)
    return identity


def _noisy_or(certainties: Iterable[float]) -> float:
    remaining = 1.0
    for certainty in certainties:
        remaining *= 1.0 - certainty
    return 1.0 - remaining


def _weak_only_score(certainties: Iterable[float]) -> float:
    """The noisy-OR of weak hints, squeezed between the best one and :data:`WEAK_ONLY_CAP`.

    One hint keeps its own certainty; each agreeing hint closes part of the remaining gap to the
    cap, in proportion to what it would add to a noisy-OR, so more agreement still ranks higher.
    An OUI, a favicon (its mmh3 and md5 are one icon) and a title are not independent proofs.
    """
    values = list(certainties)
    top = max(values, default=0.0)
    combined = _noisy_or(values)
    ceiling = WEAK_ONLY_CAP - 0.01  # stays below the cap after rounding to 3 decimals
    if top >= ceiling or combined <= top:
        return min(combined, top)
    return top + (ceiling - top) * (combined - top) / (1.0 - top)


def _winner(scores: dict[str, float], strong: set[str], best: dict[str, dict[str, float]]) -> str | None:
    if not scores:
        return None
    if strong:
        # A strong signal decides; among conflicting strong makers the stronger evidence wins.
        # Equally strong contradicting makers (a SADP and a DHIP reply from one address) are a
        # tie, not a pick: sorting a set would otherwise choose by hash order, run to run.
        # More independent strong signals (a SADP reply and an ISAPI namespace) beat fewer.
        def strong_key(vendor: str) -> tuple[float, int, float, str]:
            certainties = best[vendor].values()
            count = sum(1 for c in certainties if c >= STRONG)
            return (max(certainties), count, scores[vendor], vendor)

        contenders = sorted(strong, key=strong_key, reverse=True)
        if len(contenders) > 1:
            first, second = strong_key(contenders[0]), strong_key(contenders[1])
            if first[:2] == second[:2] and first[2] - second[2] < TIE_MARGIN:
                return None
        return contenders[0]
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] < TIE_MARGIN:
        return None
    return ranked[0][0]


def _conflicts(hits: Sequence[Hit], winner: str, scores: dict[str, float]) -> list[str]:
    notes: list[str] = []
    seen: set[str] = set()
    for hit in hits:
        vendor = hit.fields.get("vendor")
        if not vendor or vendor == winner or hit.signature.id in seen:
            continue
        seen.add(hit.signature.id)
        against = f"the evidence for {winner}" if winner != "unknown" else "other evidence"
        how = f" through the brand {hit.fields['brand']} ({hit.via})" if hit.via else ""
        notes.append(
            f"{hit.signature.id} ({hit.observation.kind}, certainty {hit.signature.certainty:.2f}) "
            f"names {vendor}{how}, against {against}"
        )
    if winner == "unknown" and len(scores) > 1:
        ranked = ", ".join(f"{v} {s:.2f}" for v, s in sorted(scores.items(), key=lambda i: -i[1]))
        notes.append(f"makers too close to call: {ranked}")
    return notes


def _fill_fields(identity: Identity, hits: Sequence[Hit]) -> list[Hit]:
    """Take each field from the best agreeing hit; return the hits the identity rests on."""
    winner = identity.vendor
    agreeing = [h for h in hits if h.fields.get("vendor") == winner] if winner != "unknown" else []
    neutral = [h for h in hits if not h.fields.get("vendor")]
    used: list[Hit] = list(agreeing)
    for name in _FIELDS:
        for pool in (agreeing, neutral):
            candidates = [h for h in pool if h.fields.get(name)]
            if candidates:
                chosen = min(candidates, key=lambda h: (_SOURCE_RANK.get(h.signature.kind, 3), -h.signature.certainty))
                setattr(identity, name, chosen.fields[name])
                if chosen not in used:
                    used.append(chosen)
                break
    return used


def _fill_brand(identity: Identity, hits: Sequence[Hit], used: list[Hit]) -> None:
    winner = identity.vendor
    names = lineage()
    candidates = []
    for hit in hits:
        brand = hit.fields.get("brand")
        vendor = hit.fields.get("vendor")
        if not brand or brand == winner:
            continue
        if winner != "unknown" and vendor and vendor != winner:
            continue  # a losing maker's brand is already reported as a conflict
        maker = names.maker_of(brand)
        if winner != "unknown" and maker is not None and maker != winner:
            identity.conflicts.append(
                f"brand {brand} ({hit.signature.id}) is a {maker} brand in lineage.yaml, "
                f"but the evidence says {winner}"
            )
            continue
        candidates.append(hit)
    if candidates:
        chosen = max(candidates, key=lambda h: h.signature.certainty)
        identity.brand = chosen.fields["brand"]
        if chosen not in used:
            used.append(chosen)


#: Fields whose value a signature may respell (the firmware's "build" spacing, ISAPI's two fields).
_SPELLED = frozenset({"firmware", "model", "serial"})
_SPACE_RUN = re.compile(r"\s+")


def _as_sent(value: str, observed: str) -> str | None:
    """The text in ``observed`` that is ``value`` up to whitespace, when it differs from ``value``."""
    if value in observed:
        return None
    words = _SPACE_RUN.split(value.strip())
    if not words or len(words) > 8:
        return None
    found = re.search(r"\s*".join(re.escape(w) for w in words), observed[:MAX_OBSERVATION_VALUE])
    return found.group(0) if found else None


def _quote(value: str, quotes: dict[str, str]) -> str:
    """``value`` cut to QUOTE_LIMIT characters; the same cut string for the same value."""
    if len(value) <= QUOTE_LIMIT:
        return value
    quoted = quotes.get(value)
    if quoted is None:
        quoted = quotes[value] = value[:QUOTE_LIMIT] + "…"
    return quoted


def _field_sources(identity: Identity, hits: Sequence[Hit], used: Sequence[Hit],
                   quotes: dict[str, str]) -> dict[str, FieldSource]:
    """Per field, its value and the hits behind it: the one it was taken from, then every other
    hit of the identity that gives the same value (the maker: every hit that names it)."""
    result: dict[str, FieldSource] = {}
    for name in ("vendor", "brand", *_FIELDS):
        value = getattr(identity, name)
        if not value or value == "unknown":
            continue
        pool = hits if name == "vendor" else used
        backing = [h for h in pool if h.fields.get(name) == value]
        if name != "vendor":
            # the hit the value was taken from comes first: the one _fill_fields/_fill_brand chose
            backing.sort(key=lambda h: (_SOURCE_RANK.get(h.signature.kind, 3), -h.signature.certainty))
        else:
            backing.sort(key=lambda h: -h.signature.certainty)
        evidence: list[FieldEvidence] = []
        seen: set[tuple[str, str, str, int | None]] = set()
        for hit in backing:
            observation = hit.observation
            key = (hit.signature.id, observation.kind, observation.value, observation.port)
            if key in seen:
                continue
            seen.add(key)
            evidence.append(FieldEvidence(hit.signature.id, observation.kind, _quote(observation.value, quotes),
                                          observation.port, hit.via if name == "vendor" else None,
                                          _as_sent(value, observation.value) if name in _SPELLED else None))
        result[name] = FieldSource(value, evidence)
    return result


def _signature_list(used: Sequence[Hit], quotes: dict[str, str]) -> list[SignatureHit]:
    result: list[SignatureHit] = []
    seen: set[tuple[str, str, str, int | None]] = set()
    for hit in sorted(used, key=lambda h: -h.signature.certainty):
        observation = hit.observation
        value = _quote(observation.value, quotes)
        key = (hit.signature.id, observation.kind, value, observation.port)
        if key in seen:
            continue
        seen.add(key)
        result.append(SignatureHit(hit.signature.id, observation.kind, value, observation.port))
    return result


_ENGINE: Engine | None = None
#: The scan loads the engine in a warm-up thread while its first stages run (issue 15); the
#: lock makes a stage that needs it sooner wait for that load instead of doing a second one.
_ENGINE_LOCK = threading.Lock()


def default_engine() -> Engine:
    """The process-wide engine over the shipped signatures (loaded once)."""
    global _ENGINE
    if _ENGINE is None:
        with _ENGINE_LOCK:
            if _ENGINE is None:
                _ENGINE = Engine()
    return _ENGINE


def identify(observations: Sequence[Observation]) -> Identity:
    """The identity the observations of one device support (the engine API contract)."""
    return default_engine().identify(observations)
