"""Many sites: one agent per camera segment, evidence bundles, NATS JetStream between them.

Issue 12: agent keys, the bundle file format, the fleet files and the JetStream wiring (which
touch no store), and on them the bundle export and merge, the agent and the central merger. All
SQL of bundles (copying a run's rows out, the one-transaction merge, the ledger, the agent's
outbox) lives in :mod:`camaudit.store.bundles`.

Modules
    keys       Ed25519 agent keys: made on the agent's first start (0600, never overwritten, never
               baked into an image), public key as one text line, short fingerprint.
    bundle     the bundle file format, build / sign / verify; a bundle is untrusted at the centre.
    config     ``fleet init`` (nats-server.conf, central.toml, site-NAME.toml) and their loaders;
               ``fleet trust`` (the keys the centre trusts per site).
    subjects   every name on the server and each principal's permissions (pure).
    nats       connect (one-line errors), retry with backoff, provisioning, jobs, bundles in the
               Object Store, heartbeats in a key-value bucket, the merged-jobs bucket.
    export     a run of an agent's store as a signed bundle (``bundle export``; the agent's outbox).
    merge      verify, merge once (ledger), then identify and assess at the centre as a local
               scan is (``bundle import``; the merger); finishes merges a killed merger left.
    agent      ``agent run``: connect out (retry with backoff, say so), heartbeat, send the
               outbox (pending -> uploaded -> merged), pull a job, run it, export, then ack.
    central    ``central serve``: provision, pull notices, fetch, verify, merge, record the
               job as merged, remove the object, and only then ack.

What a bundle carries: the run's evidence (the scan row, hosts, services, observations, device
settings, its egress runs, tests and flows, its verdicts, the listener entries of its nonces).
Identities, devices, sightings and assessments are the centre's to derive: device keys are per
site and the centre's own, and the assessment is made with the centre's policy and register.
The same run exported twice is the same bytes (the bundle database holds no export time), so
one bundle id. The ledger row commits with the rows; ``finalised_at`` is set once the scan is
identified and assessed, so a merger killed between the two finishes the work on its next
start. A run the store already has from another bundle (or a local run) is "already merged";
one it has under another site is refused (``conflict``).

Names on the server (site names are ``[a-z0-9-]``, 1-32 characters: one subject token, no wildcard)
    jobs        stream CAMAUDIT_JOBS, work-queue retention, subjects ``camaudit.jobs.<site>``;
                one durable pull consumer per site, ``site-<site>``, filtered to its subject.
                Publishing with ``Nats-Msg-Id`` = ``<site>/<schedule>/<slot>`` makes a schedule
                fired twice for one slot queue one job (within ``job_duplicate_window``):
                ``fleet scan --schedule NAME --slot SLOT`` from a timer at the centre.
    bundles     Object Store bucket ``bundles-<site>`` per site (stream ``OBJ_bundles-<site>``),
                object name = bundle id; then a notice on ``camaudit.bundles.<site>`` (stream
                CAMAUDIT_BUNDLES, work-queue, ``Nats-Msg-Id`` = bundle id) that the merger pulls
                through its durable consumer ``merger`` and acknowledges only after the merge.
                The merger takes the site from the notice's subject (only that site may publish
                there), fetches the object with a byte bound (no links, no understated sizes),
                and verifies it against that site's keys. Notices are capped per site subject
                (discard new per subject), so one site cannot crowd out the others.
    merged      key-value bucket ``camaudit-merged`` (the centre's only), key = job id, value
                ``{job_id, site, kind, bundle_id, scan_id, egress_run_id, merged_at}``: what
                ``fleet scan --wait`` polls. After a merge the centre removes the object from
                the site's bucket; the agent takes its absence as "merged". A bundle sent again
                (an agent that died between upload and bookkeeping) carries a fresh notice id,
                since the server drops a repeated ``Nats-Msg-Id`` before the merger sees it.
    heartbeats  key-value bucket ``camaudit-heartbeats``, key ``<site>.<agent id>``, value
                ``{agent_id, site, version, sent_at}``; the centre takes last-seen from the
                server's receive time and the clock offset as sent_at minus that time.
    inboxes     each principal has its own reply prefix: ``_INBOX_site-<site>``, ``_INBOX_central`` (a site
                named ``central`` still cannot listen on the centre's replies).

Permissions (written into nats-server.conf; each allow and refusal tested against a real server)
    site S  publish: ``$JS.API.CONSUMER.INFO.CAMAUDIT_JOBS.site-S``,
                     ``$JS.API.CONSUMER.MSG.NEXT.CAMAUDIT_JOBS.site-S``,
                     ``$JS.ACK.CAMAUDIT_JOBS.site-S.>`` (ack, in-progress),
                     ``$JS.API.STREAM.INFO.OBJ_bundles-S``, ``$JS.API.STREAM.MSG.GET.OBJ_bundles-S``,
                     ``$O.bundles-S.>`` (chunks and meta of its own objects),
                     ``camaudit.bundles.S``,
                     ``$JS.API.STREAM.INFO.KV_camaudit-heartbeats``, ``$KV.camaudit-heartbeats.S.>``
            subscribe: ``_INBOX_site-S.>`` only.
            So a site cannot pull, inspect or snoop another site's jobs (nor their delivery to the
            other's inbox), cannot write another site's bucket, notices or heartbeat, cannot queue
            jobs, and cannot create, purge or delete anything.
    centre  publish: ``camaudit.jobs.*``, ``$JS.API.>`` (it provisions), ``$JS.ACK.>``,
            ``$JS.FC.>``, ``$O.>``, ``$KV.>``; subscribe: ``_INBOX_central.>``. It does not
            announce bundles.

Bundle file (``camaudit.bundle/1``; see :mod:`camaudit.fleet.bundle`)
    magic ``CAMAUDIT-BUNDLE\\n`` | u32 manifest length | canonical JSON manifest | u16 signature
    length (64) | Ed25519 signature of ``"camaudit.bundle/1 manifest\\0" + manifest`` | u64 database
    length | SQLite bytes | end. Manifest: schema, bundle_id (SHA-256 of the SQLite bytes), kind
    (scan|egress), site, segments, agent_id, agent_version, job_id, started_at, finished_at, counts,
    key (signer's fingerprint). No compression, no member names, exact field set, canonical JSON
    re-serialised and compared, bundle id recomputed, size limit before reading.

Errors: connect() turns nats-py's failures into one line: FleetAuthError (exit 2, credentials
refused, not retried) or FleetUnavailable (exit 3: refused, unresolvable, timed out);
connect_with_retry() retries the latter with doubling, jittered pauses and logs each retry.
Known limits: a bundle's rows are checked to belong to its run and site, not for every column's
type or size (the whole is bounded by max_bundle_bytes, and readers treat stored JSON as
untrusted); a site's egress runs merge with their ``control`` flag, so a compromised site could
add a "control" run that a later re-decision at the centre would consult. The generated server config has no TLS block (a tls:// URL needs one added by
hand); passwords in nats-server.conf are plaintext (0600; bcrypt needs a dependency); the heartbeat
bucket and notice stream are shared, so a compromised site can fill its own share of them.

Trust: the agent makes its key on first start (``camaudit fleet key --fleet site-S.toml`` makes it
if needed and prints the public key line); the operator carries that line to the centre and runs
``camaudit fleet trust DIR --site S KEYFILE``. A key is trusted for one site only.
"""
