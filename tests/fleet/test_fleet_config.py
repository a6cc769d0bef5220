"""Fleet files: loading, validation, and the documented defaults."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
from pathlib import Path

import pytest

from camaudit.config import FleetConfig
from camaudit.errors import ConfigError
from camaudit.fleet import subjects
from camaudit.fleet.config import check_server_url, init_fleet, load_central, load_site, trust_key
from camaudit.fleet.keys import load_or_create_key
from camaudit.resources import config_dir


def test_the_example_documents_every_fleet_default() -> None:
    shipped = tomllib.loads((config_dir() / "fleet.example.toml").read_text())
    defaults = dataclasses.asdict(FleetConfig())
    defaults.pop("server")
    assert shipped["limits"] == defaults


def test_init_writes_the_defaults_and_they_load_back(tmp_path: Path) -> None:
    init_fleet(tmp_path, ["pool"], server="nats://10.9.8.7:4333")
    central = load_central(tmp_path / "central.toml")
    assert central.limits == FleetConfig(server="nats://10.9.8.7:4333")
    assert 'listen: "10.9.8.7:4333"' in (tmp_path / "nats-server.conf").read_text()
    site = load_site(tmp_path / "site-pool.toml")
    assert site.key_file == tmp_path / "agent-ed25519.key" and site.limits == central.limits
    assert not site.key_file.exists()  # fleet init never makes an agent's key


def test_a_key_trusted_for_two_sites_by_hand_is_refused(tmp_path: Path) -> None:
    init_fleet(tmp_path, ["pool", "yard"])
    key = load_or_create_key(tmp_path / "k")
    trust_key(tmp_path, "pool", key.public_text)
    path = tmp_path / "central.toml"
    path.write_text(path.read_text().replace("[sites.yard]", f'[sites.yard]\nkeys = ["{key.public_text}"]\n[x]')
                    .replace("keys = [\n]", "", 1))
    with pytest.raises(ConfigError, match="trusted for both site 'pool' and site 'yard'"):
        load_central(path)


@pytest.mark.parametrize(("limits", "message"), [
    ("unknown = 1", "has no setting 'unknown'"),
    ("retry_max = -1", "must be a positive float"),
    ("job_max_deliver = 2.5", "must be a positive int"),
    ("max_bundle_bytes = true", "must be a positive int"),
    ("job_duplicate_window = 9999999.0", "must not exceed job_max_age"),
])
def test_bad_limits_are_one_clear_error(tmp_path: Path, limits: str, message: str) -> None:
    init_fleet(tmp_path, ["pool"])
    path = tmp_path / "site-pool.toml"
    name = limits.split(" =")[0]
    text = re.sub(rf"(?m)^{name} = .*$\n", "", path.read_text())
    path.write_text(text.replace("[limits]", f"[limits]\n{limits}"))
    with pytest.raises(ConfigError, match=message):
        load_site(path)


@pytest.mark.parametrize("url", ["http://x", "nats://", "nats://x:0x", "x:4222", "nats://user:pw@x:4222",
                                 "nats://x:4222/path"])
def test_a_server_url_that_is_not_one_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="is not a NATS server URL"):
        check_server_url(url)


def test_a_readable_fleet_file_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    init_fleet(tmp_path, ["pool"])
    os.chmod(tmp_path / "site-pool.toml", 0o644)
    with caplog.at_level(logging.WARNING):
        load_site(tmp_path / "site-pool.toml")
    assert "can be read by others: run chmod 600" in caplog.text


@pytest.mark.parametrize("name", ["", "a" * 33, "-a", "a-", "A", "a.b", "a*", "a>", "a_b", "a b", "ä"])
def test_site_names_that_could_leave_their_own_subjects_are_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        subjects.check_site_name(name)


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: tokens split on '.', '*' is one token, '>' one or more at the end."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


@pytest.mark.parametrize(("site", "other"), [("pool", "pool-2"), ("a", "a-b"), ("yard", "pool")])
def test_no_site_permission_reaches_another_sites_subjects(site: str, other: str) -> None:
    """'pool' must not reach 'pool-2': every name of another site lies outside each allow."""
    mine = subjects.site_permissions(site)
    theirs = subjects.site_permissions(other)
    concrete = [s.replace(">", "x.y").replace("*", "x") for s in
                theirs["publish"]["allow"] + theirs["subscribe"]["allow"]]
    concrete += [subjects.jobs_subject(other), f"$JS.ACK.{subjects.JOBS_STREAM}.{subjects.site_consumer(other)}.1.2"]
    for pattern in mine["publish"]["allow"] + mine["subscribe"]["allow"]:
        for subject in concrete:
            if subject.startswith("$JS.API.STREAM.INFO.KV_"):
                continue  # the heartbeat bucket's info is shared (it reveals no site's data)
            assert not _matches(pattern, subject), (pattern, subject)


@pytest.mark.parametrize("site", ["central", "pool"])
def test_no_site_can_listen_on_the_centres_inbox(site: str) -> None:
    """A site named 'central' must not get the centre's reply subjects (its object reads, its
    JetStream answers): each principal's inbox prefix is its own."""
    centre_replies = [f"{subjects.CENTRAL_INBOX}.abc", f"{subjects.CENTRAL_INBOX}.abc.def"]
    for pattern in subjects.site_permissions(site)["subscribe"]["allow"]:
        assert not any(_matches(pattern, reply) for reply in centre_replies), pattern
