"""The shipped YAML (signatures, advisories, lineage) is read through libyaml when PyYAML has it
(issue 15: about 0.5 s of a one-host scan in pure Python), with the same data and errors."""

from __future__ import annotations

import pytest
import yaml

from camaudit.fingerprint.signatures import signatures_dir
from camaudit.yamllines import safe_load_fast


def test_every_shipped_yaml_file_reads_the_same() -> None:
    files = sorted(p for p in signatures_dir().iterdir() if p.name.endswith(".yaml"))
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert safe_load_fast(text) == yaml.safe_load(text), path.name


@pytest.mark.parametrize("text", ["a: [1, 2\nb: 3\n", "x: !!python/object:os.system ls\n", "\tkey: tab\n"])
def test_refused_documents_fail_as_with_the_pure_python_loader(text: str) -> None:
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    with pytest.raises(yaml.YAMLError) as got:
        safe_load_fast(text)
    assert str(got.value) == str(expected.value)


def test_libyaml_does_the_reading_when_present(monkeypatch: pytest.MonkeyPatch) -> None:
    if not getattr(yaml, "__with_libyaml__", False):
        pytest.skip("PyYAML without libyaml: the pure-Python loader is all there is")

    def refuse(*args: object, **kwargs: object) -> object:
        raise AssertionError("the pure-Python loader was used for a valid document")

    monkeypatch.setattr(yaml, "safe_load", refuse)
    assert safe_load_fast("a: 1\n") == {"a": 1}
