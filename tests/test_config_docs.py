"""docs/configuration.md is what scripts/config_docs.py writes from the settings dataclasses, every key
described beside it (`#:`), the tuning keys marked advanced."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest

from swarm.orchestration.settings_check import SECTIONS, settings_class

REPO = Path(__file__).resolve().parent.parent


def _load_generator():
    spec = importlib.util.spec_from_file_location("config_docs", REPO / "scripts" / "config_docs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up while it is built
    spec.loader.exec_module(module)
    return module


config_docs = _load_generator()


def test_configuration_page_is_current():
    page = config_docs.PAGE.read_text() if config_docs.PAGE.exists() else ""
    assert page == config_docs.render(), f"docs/configuration.md is stale: run `{config_docs.COMMAND}`"


def test_every_key_of_every_section_is_on_the_page_with_a_description():
    page = config_docs.PAGE.read_text()
    for section in SECTIONS:
        cls = settings_class(section)
        assert cls is not None, f"[{section}] cannot be imported here"
        keys = config_docs.keys(cls)
        assert [k.name for k in keys] == [f.name for f in dataclasses.fields(cls)]
        body = page.split(f"## [{section}]\n", 1)[1].split("\n## ", 1)[0]
        for key in keys:
            assert key.description and not key.description.startswith("["), (section, key.name)
            assert f"| `{key.name}` |" in body, (section, key.name)
    # the keys a user needs are few; the rest are marked advanced
    every = [k for section in SECTIONS for k in config_docs.keys(settings_class(section))]
    assert 12 <= sum(not k.advanced for k in every) <= 30


@dataclasses.dataclass(frozen=True)
class _Described:
    plain: int = 3  #: a trailing description
    #: a description above,
    #: on two lines
    above: tuple[str, ...] = ("a",)
    # a why-comment is not a description
    tuned: float | None = None  #: [advanced] a tuning key
    table: dict[str, list[float]] = dataclasses.field(default_factory=lambda: {"x": [0.5, 1.0]})  #: ranges


@dataclasses.dataclass(frozen=True)
class _Undescribed:
    described: int = 1  #: fine
    # only a why-comment
    bare: bool = False


def test_descriptions_are_read_from_doc_comments_beside_each_key():
    keys = {k.name: k for k in config_docs.keys(_Described)}
    assert keys["plain"] == config_docs.Key("plain", "integer", "3", "a trailing description", False)
    assert keys["above"].description == "a description above, on two lines"
    assert keys["above"].type == "list of strings" and keys["above"].default == '["a"]'
    assert keys["tuned"].advanced and keys["tuned"].description == "a tuning key"
    assert keys["tuned"].type == "number" and keys["tuned"].default == "unset"
    assert keys["table"].type == "table of list of numbers"
    assert keys["table"].default == "{ x = [0.5, 1.0] }"


def test_a_key_without_a_description_names_itself():
    with pytest.raises(SystemExit, match=r"_Undescribed\.bare: no `#:` description"):
        config_docs.keys(_Undescribed)


def test_check_mode_says_how_to_regenerate_a_stale_page(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text("# old\n")
    monkeypatch.setattr(config_docs, "PAGE", stale)
    assert config_docs.main(["--check"]) == 1
    assert config_docs.COMMAND in capsys.readouterr().err
    assert stale.read_text() == "# old\n"  # --check writes nothing
    assert config_docs.main([]) == 0
    assert config_docs.main(["--check"]) == 0
