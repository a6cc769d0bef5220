"""Names on the NATS server (subjects, streams, consumers, buckets) and each principal's permissions.

Pure: no I/O. Every name a site uses is derived from its site name, which :func:`check_site_name`
confines to ``[a-z0-9-]`` so that it can never add a subject token (``.``), a wildcard (``*``,
``>``) or reach another site's names. The permission lists here are written verbatim into
``nats-server.conf`` by ``camaudit fleet init``; tests/fleet/test_nats_permissions.py checks each
allow and each refusal against a real server.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigError

#: Site names: short, lower case, digits and hyphens; no dot, wildcard or underscore, so that
#: ``camaudit.jobs.<site>``, ``bundles-<site>`` and ``_INBOX_site-<site>`` stay one token each and
#: no site's names are a prefix-match of another's.
SITE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")

JOBS_STREAM = "CAMAUDIT_JOBS"
JOBS_PREFIX = "camaudit.jobs"
NOTICES_STREAM = "CAMAUDIT_BUNDLES"
NOTICES_PREFIX = "camaudit.bundles"
MERGER_CONSUMER = "merger"
HEARTBEAT_BUCKET = "camaudit-heartbeats"
#: The centre's record of merged jobs (key: job id), read by `fleet scan --wait`; no site reads it.
MERGED_BUCKET = "camaudit-merged"
CENTRAL_USER = "central"
CENTRAL_INBOX = "_INBOX_central"


def check_site_name(name: str) -> str:
    """Return ``name`` if it is a valid site name, else raise ConfigError saying what is allowed."""
    if not isinstance(name, str) or not SITE_NAME.fullmatch(name):
        raise ConfigError(
            f"site name {name!r} is not allowed: use 1-32 lower-case letters, digits and hyphens "
            "(not at either end), e.g. pool or works-yard")
    return name


def jobs_subject(site: str) -> str:
    return f"{JOBS_PREFIX}.{site}"


def site_consumer(site: str) -> str:
    """The durable pull consumer through which one site receives its jobs."""
    return f"site-{site}"


def bundle_bucket(site: str) -> str:
    """The Object Store bucket holding one site's bundles (one per site: permissions per bucket)."""
    return f"bundles-{site}"


def bundle_stream(site: str) -> str:
    return f"OBJ_{bundle_bucket(site)}"


def notice_subject(site: str) -> str:
    """Where a site announces an uploaded bundle to the merger."""
    return f"{NOTICES_PREFIX}.{site}"


def heartbeat_key(site: str, agent_id: str) -> str:
    return f"{site}.{agent_id}"


def site_user(site: str) -> str:
    return f"site-{site}"


def site_inbox(site: str) -> str:
    """A site's own reply-subject prefix: replies and pulled jobs come here, and no other site
    may subscribe to it (with the shared ``_INBOX.>`` a site could read another's fetched jobs).
    It starts with ``_INBOX_site-`` so that no site name, ``central`` included, can equal the
    centre's ``_INBOX_central``."""
    return f"_INBOX_site-{site}"


def site_permissions(site: str) -> dict[str, Any]:
    """What a site's agent may do, and nothing more.

    publish:
      - ``$JS.API.CONSUMER.INFO|MSG.NEXT.CAMAUDIT_JOBS.site-<site>``: look at and pull from its own
        consumer only (so it can neither read nor take another site's jobs);
      - ``$JS.ACK.CAMAUDIT_JOBS.site-<site>.>``: acknowledge (and ``+WPI`` progress) its own jobs;
      - ``$JS.API.STREAM.INFO|MSG.GET.OBJ_bundles-<site>`` and ``$O.bundles-<site>.>``: look up
        and put objects into its own bundle bucket (chunks and meta); no purge, no delete;
      - ``camaudit.bundles.<site>``: announce an uploaded bundle to the merger;
      - ``$JS.API.STREAM.INFO.KV_camaudit-heartbeats`` and ``$KV.camaudit-heartbeats.<site>.>``:
        write its own heartbeat keys only (it cannot read the bucket: no GET, no consumer).
    subscribe: only its own inbox prefix.
    It may create nothing: the centre provisions streams, consumers and buckets.
    """
    check_site_name(site)
    consumer = site_consumer(site)
    stream = bundle_stream(site)
    return {
        "publish": {"allow": [
            f"$JS.API.CONSUMER.INFO.{JOBS_STREAM}.{consumer}",
            f"$JS.API.CONSUMER.MSG.NEXT.{JOBS_STREAM}.{consumer}",
            f"$JS.ACK.{JOBS_STREAM}.{consumer}.>",
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.STREAM.MSG.GET.{stream}",
            f"$O.{bundle_bucket(site)}.>",
            notice_subject(site),
            f"$JS.API.STREAM.INFO.KV_{HEARTBEAT_BUCKET}",
            f"$KV.{HEARTBEAT_BUCKET}.{site}.>",
        ]},
        "subscribe": {"allow": [f"{site_inbox(site)}.>"]},
    }


def central_permissions() -> dict[str, Any]:
    """The centre administers JetStream (it creates every stream, consumer and bucket), publishes
    jobs, reads bundles and heartbeats (``$JS.FC.>``: flow-control replies of the ordered
    consumers that read objects and watch buckets). It does not announce bundles (only sites do) and listens
    only on its own inbox prefix."""
    return {
        "publish": {"allow": [f"{JOBS_PREFIX}.*", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$O.>", "$KV.>"]},
        "subscribe": {"allow": [f"{CENTRAL_INBOX}.>"]},
    }
