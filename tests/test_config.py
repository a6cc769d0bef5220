from __future__ import annotations

from pathlib import Path

import pytest

from camaudit.config import DEFAULT_PORTS, load_config, parse_ports
from camaudit.errors import ConfigError
from camaudit.resources import config_dir


def test_shipped_toml_matches_the_built_in_defaults() -> None:
    shipped = config_dir() / "camaudit.toml"
    assert load_config(Path(str(shipped))) == load_config(None)


def test_default_port_list_covers_the_camera_ports() -> None:
    for port in (80, 81, 88, 443, 554, 2020, 5000, 8000, 8080, 8443, 8554, 8899, 34567, 37777, 37778):
        assert port in DEFAULT_PORTS


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[scan]\nrate = 10\nports = [80]\n[probe]\ntimeout = 2\n")
    config = load_config(path, rate=50, probe_timeout=None, targets=["10.0.0.1"])
    assert config.sweep.rate == 50
    assert config.sweep.ports == (80,)
    assert config.probe.timeout == 2.0
    assert config.targets == ("10.0.0.1",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[scan]\nrate = -1\n", "rate must be a positive number"),
        ("[scan]\nspeed = 3\n", "no setting 'speed'"),
        ("[scan]\nengine = 'masscan'\n", "engine must be"),
        ("[scan]\nports = ['http']\n", "ports must be a list"),
        ("[extra]\n", "unknown section"),
        ("[scan\n", "not valid TOML"),
        ("[scan]\nallow_public = 'yes'\n", "true or false"),
    ],
)
def test_bad_configuration_files_get_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_configuration_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "ports"), [("80", (80,)), ("554, 80,80", (80, 554)), ("8000-8003", (8000, 8001, 8002, 8003))]
)
def test_parse_ports(text: str, ports: tuple[int, ...]) -> None:
    assert parse_ports(text) == ports


@pytest.mark.parametrize("text", ["", "0", "65536", "http", "90-80", "1-2-3"])
def test_parse_ports_refuses_nonsense(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_ports(text)


def test_config_digest_changes_with_the_config() -> None:
    assert load_config(rate=1).digest() != load_config(rate=2).digest()
    assert load_config(rate=1).digest() == load_config(rate=1).digest()
