"""Write docs/configuration.md, every swarm.toml key, from the settings dataclasses themselves.

    .venv/bin/python scripts/config_docs.py          # rewrite the page
    .venv/bin/python scripts/config_docs.py --check  # exit 1 when the page is stale

The sections are swarm.orchestration.settings_check.SECTIONS, the keys, types and defaults the dataclasses'
fields. A key's description is its `#:` comment (Sphinx's attribute doc-comment form), on the field's line or
on the lines right above it, so it lives beside the key and nowhere else; `#: [advanced] ...` marks a tuning
key a user rarely touches. A key without a `#:` comment is an error: the page lists every key.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import io
import sys
import textwrap
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

from swarm.orchestration.settings_check import SECTIONS, settings_class

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
COMMAND = ".venv/bin/python scripts/config_docs.py"
ADVANCED = "[advanced]"
UNSET = "unset"  # a default of None: the key is absent

# The docs page that explains each section's behaviour.
EXPLAINED = {
    "agents": "[agents](agents.md)",
    "api": "[agents](agents.md#the-api-agent)",
    "coordinator": "[agents](agents.md#the-coordinator)",
    "noise": "[noise](noise.md)",
    "optuna": "[agents](agents.md#the-optuna-agent)",
    "pruning": "[noise](noise.md#early-stop)",
    "ray": "[cluster](cluster.md)",
    "runner": "[trust](trust.md)",
}


@dataclasses.dataclass(frozen=True)
class Key:
    name: str
    type: str
    default: str
    description: str
    advanced: bool


def doc_comments(cls: type) -> dict[str, str]:
    """Field name -> its `#:` comment text, from the class's source."""
    lines, _ = inspect.getsourcelines(cls)
    source = textwrap.dedent("".join(lines))
    comments: dict[int, str] = {}  # line -> `#:` text
    code_lines: set[int] = set()  # lines holding a token other than a comment
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and tok.string.startswith("#:"):
            comments[tok.start[0]] = tok.string[2:].strip()
        elif tok.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT):
            code_lines.add(tok.start[0])
    found = {}
    for node in ast.parse(source).body[0].body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        trailing = [comments[n] for n in range(node.lineno, node.end_lineno + 1) if n in comments]
        above = []
        n = node.lineno - 1
        while n in comments and n not in code_lines:
            above.insert(0, comments[n])
            n -= 1
        text = " ".join(above + trailing)
        if text:
            found[node.target.id] = text
    return found


def keys(cls: type) -> list[Key]:
    """The keys of one settings dataclass; SystemExit naming the first key that has no description."""
    comments = doc_comments(cls)
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        text = comments.get(f.name, "")
        advanced = text.startswith(ADVANCED)
        text = text.removeprefix(ADVANCED).strip()
        if not text:
            raise SystemExit(f"{cls.__module__}.{cls.__name__}.{f.name}: no `#:` description")
        out.append(Key(f.name, type_name(hints[f.name]), default_of(f), text, advanced))
    return out


def type_name(hint: Any) -> str:
    """The hint as TOML calls it: string, integer, list of strings, ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if origin in (tuple, list):
        return f"list of {_plural(type_name(args[0]))}"
    if origin is dict:
        return f"table of {_plural(type_name(args[1]))}"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(hint, str(hint))


def _plural(name: str) -> str:
    return name if name.startswith(("list", "table")) else name + "s"


def default_of(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    return UNSET if value is None else toml_value(value)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def render() -> str:
    """The page."""
    sections = []
    total = advanced = 0
    for section in SECTIONS:
        cls = settings_class(section)
        if cls is None:
            raise SystemExit(f"[{section}]: cannot import {SECTIONS[section]} (install the dev extras)")
        rows = keys(cls)
        total += len(rows)
        advanced += sum(k.advanced for k in rows)
        sections.append(_section(section, rows))
    head = f"""# Configuration: swarm.toml

<!-- Generated by `{COMMAND}` from the settings dataclasses; edit their `#:` comments, not this page. -->

Everything is optional: a repository without `swarm.toml` runs on the defaults. The file has one table per
concern; `swarm spawn`, `swarm resume` and `swarm doctor` check it whole before anything starts, so an
unknown section or key (with the key it meant), a wrong type or a negative number is one line and exit 1.
No setting is negative except a search range of `[optuna] ranges`.

{total} keys; the {total - advanced} a user may want are listed first in each section, the {advanced}
**advanced** ones after them are tuning keys whose defaults rarely need a change.

```toml
[agents]
default = "codex"
[agents.commands]
mybot = ["python3", "/opt/mybot.py", "--task", "{{prompt}}"]

[noise]
confirm_runs = 3
```
"""
    return head + "".join(sections)


def _section(section: str, rows: list[Key]) -> str:
    out = [f"\n## [{section}]\n"]
    if section in EXPLAINED:
        out.append(f"\nExplained in {EXPLAINED[section]}.\n")
    for title, group in (
        ("", [k for k in rows if not k.advanced]),
        ("Advanced:", [k for k in rows if k.advanced]),
    ):
        if not group:
            continue
        out.append(f"\n{title}\n\n" if title else "\n")
        out.append("| key | type | default | what it does |\n|---|---|---|---|\n")
        for k in group:
            default = k.default if k.default == UNSET else f"`{k.default}`"
            out.append(f"| `{k.name}` | {k.type} | {default} | {_cell(k.description)} |\n")
    return "".join(out)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/configuration.md from the settings dataclasses.")
    parser.add_argument("--check", action="store_true", help="exit 1 when the page is stale; write nothing")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print(f"{PAGE.name} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
