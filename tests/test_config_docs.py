"""The reference pages stay true: docs/configuration.md is what scripts/config_docs.py writes from the settings
dataclasses (every key described), README stays a page a user reads (at most 12 KB, no figures that change with
every commit), and every relative link of README and docs/*.md reaches a file and, for `#anchor`, a heading."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import sys
from pathlib import Path

import pytest

from swarm.orchestration.settings_check import SECTIONS, settings_class

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]


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


def test_readme_is_a_page_for_a_user():
    text = README.read_text()
    assert len(text.encode()) <= 12_000, f"README.md is {len(text.encode())} bytes; move reference to docs/"
    # figures that change with every commit belong in docs/ or bench/, not README
    assert not re.search(r"\b\d+ tests\b", text)
    # the two quick-start commands, as CI (.ci/run) and the demo test run them
    assert "    bash scripts/setup.sh && .venv/bin/swarm demo\n" in text
    assert "    bash scripts/setup.sh --dev && .venv/bin/python -m pytest\n" in text
    assert "bash scripts/setup.sh --dev && .venv/bin/python -m pytest" in (REPO / ".ci" / "run").read_text()


LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _prose(text: str) -> str:
    """The text outside fenced and indented code blocks and inline code, where links are links."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("    "))
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_relative_links_reach_a_file_and_a_heading(page):
    for target in LINK.findall(_prose(page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # a web address
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{page.name}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: link to {target}: no such heading"


def test_the_readme_links_each_reference_page():
    links = LINK.findall(_prose(README.read_text()))
    for name in ("noise", "trust", "cluster", "performance", "agents", "report", "configuration"):
        assert links.count(f"docs/{name}.md") == 1, name
