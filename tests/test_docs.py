"""README and docs/ stay true: README is a page a user reads (at most 12 KB, no figures that change with
every commit, each reference page linked once), every relative link reaches a file and, for `#anchor`, a
heading, every `swarm` command the pages show parses as written, README's only with flags `--help` shows,
and every bench script is listed on the performance page."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from swarm.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
REFERENCE = ("noise", "trust", "cluster", "performance", "agents", "report", "configuration")
INTERNAL = ("runner", "coordinator", "launch", "agent")  # started by the swarm itself, not by a user
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def test_readme_is_a_page_for_a_user():
    text = README.read_text()
    assert len(text.encode()) <= 12_000, f"README.md is {len(text.encode())} bytes; move reference to docs/"
    # figures that change with every commit belong in docs/ or bench/, not README
    assert not re.search(r"\b\d+ tests\b", text)
    # the two quick-start commands, as CI (.ci/run) and the demo test run them
    assert "    bash scripts/setup.sh && .venv/bin/swarm demo\n" in text
    assert "    bash scripts/setup.sh --dev && .venv/bin/python -m pytest\n" in text
    assert "bash scripts/setup.sh --dev && .venv/bin/python -m pytest" in (REPO / ".ci" / "run").read_text()


def test_the_readme_links_each_reference_page_once():
    links = LINK.findall(_prose(README.read_text()))
    for name in REFERENCE:
        assert links.count(f"docs/{name}.md") == 1, name


def _prose(text: str) -> str:
    """The text outside fenced and indented code blocks and inline code, where links are links."""
    text = "\n".join(line for line in FENCE.sub("", text).splitlines() if not line.startswith("    "))
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", FENCE.sub("", page.read_text()), re.M)
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


def _examples(page: Path) -> list[str]:
    """The `swarm ...` command lines of a page's code blocks, without comments, with and without their
    [optional parts] (placeholders N and K as 2, USD as 1.5)."""
    text = page.read_text()
    blocks = [line for line in text.splitlines() if line.startswith("    ")]
    blocks += [line for block in FENCE.findall(text) for line in block.splitlines()]
    out = []
    for line in blocks:
        line = re.sub(r"\s+#.*$", "", line.strip())
        without = re.sub(r"\s*\[[^\]]*\]", "", line)  # the optional parts left out, then all given
        given = re.sub(r"\b[NK]\b", "2", re.sub(r"\bUSD\b", "1.5", line.replace("[", "").replace("]", "")))
        for variant in dict.fromkeys((without, given)):
            for command in variant.split(" && "):
                if re.match(r"(\.venv/bin/)?swarm ", command):
                    out.append(command.split(" ", 1)[1])
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_swarm_command_a_page_shows_parses_as_written(page, capsys):
    for example in _examples(page):
        argv = shlex.split(example)
        parser = build_parser(argv[0])
        assert parser is not None, f"{page.name}: `swarm {example}`: no such command"
        try:
            parser.parse_args(argv)
        except SystemExit:
            pytest.fail(f"{page.name}: `swarm {example}`: {capsys.readouterr().err.strip().splitlines()[-1]}")


def test_readme_shows_the_commands_and_flags_help_shows():
    examples = _examples(README)
    assert len(examples) > 20  # the commands for you and for agents, the quick start, the GPU box
    for example in examples:
        argv = shlex.split(example)
        assert argv[0] not in INTERNAL, f"README: `swarm {example}`: an internal command"
        command = _subparser(argv[0])
        for flag in (a.split("=", 1)[0] for a in argv[1:] if a.startswith("--")):
            action = command._option_string_actions.get(flag)
            assert action is not None and action.help != argparse.SUPPRESS, (
                f"README: `swarm {example}`: {flag} is not a flag `swarm {argv[0]} --help` shows"
            )


def _subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def test_every_bench_script_is_on_the_performance_page():
    page = (REPO / "docs" / "performance.md").read_text()
    scripts = [p for p in sorted((REPO / "bench").glob("*.py")) if "__main__" in p.read_text()]
    assert scripts
    for script in scripts:
        assert f"`bench/{script.name}`" in page, f"docs/performance.md does not list bench/{script.name}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_file_of_the_repository_a_page_names_exists(page):
    text = page.read_text()
    named = re.findall(
        r"\b((?:swarm|bench|tests|scripts|deploy|docs)/[\w/.-]+\.(?:py|md|yaml|toml|sh|png))", text
    )
    assert named or page.name in ("configuration.md", "glossary.md")  # these two name keys and modules
    for path in named:
        assert (REPO / path).exists(), f"{page.name} names {path}, which is not in the repository"
