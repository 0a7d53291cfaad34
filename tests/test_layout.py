"""The package's shape: layers that hold, a wheel that carries every module, handlers that resolve."""

import argparse
import ast
import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tokenize
import zipfile
from pathlib import Path

import pytest

from swarm.agents.api.tools import SWARM_SUBCOMMANDS
from swarm.cli import COMMAND_GROUPS, FOR_AGENTS, FOR_YOU, INTERNAL, build_parser
from tests.support.target import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def test_lower_layers_never_import_higher_ones():
    """The import-linter contracts in pyproject.toml: swarm/'s layers, and test fixtures kept out of it."""
    proc = subprocess.run(
        [str(VENV_BIN / "lint-imports")], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def _handlers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if handler := sub.get_default("handler"):
                    yield (*path, name), handler
                yield from _handlers(sub, (*path, name))


def test_every_command_handler_resolves_and_is_named_after_its_command():
    handlers = dict(_handlers(build_parser()))
    assert len(handlers) >= 25  # every command and `agent` kind
    for command, handler in handlers.items():
        module_name, function_name = handler.split(":")
        assert function_name == f"cmd_{command[-1]}", (command, handler)
        assert callable(getattr(importlib.import_module(module_name), function_name)), handler


@pytest.mark.slow  # builds and installs a wheel
def test_the_wheel_holds_every_module_and_its_swarm_runs(tmp_path):
    """A wheel built from the source (not an editable install) has every module of swarm/, and the
    `swarm` it installs answers --help (which imports nothing beyond the standard library)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "swarm", source / "swarm", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            wheels,
            source,
        ],  # fmt: skip
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("*.whl")
    inside = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    modules = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "swarm").rglob("*.py")}
    assert modules - inside == set()
    assert {"swarm/tui/app.py", "swarm/board/fold.py", "swarm/agents/api/agent.py"} <= inside

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    subprocess.run(
        [venv / "bin/python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [venv / "bin/swarm", "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "spawn" in proc.stdout and "watch" in proc.stdout

    # With the dependencies in reach (this environment's site-packages, after the venv's own), every
    # module imports from the installed wheel, not from the source tree.
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "deps.pth").write_text("\n".join(p for p in sys.path if p.endswith("site-packages")) + "\n")
    check = (
        "import importlib, pkgutil, swarm; "
        "assert '/site-packages/swarm' in swarm.__file__, swarm.__file__; "
        "[importlib.import_module(m.name) for m in pkgutil.walk_packages(swarm.__path__, 'swarm.') "
        "if m.name != 'swarm.__main__']"
    )
    proc = subprocess.run(
        [venv / "bin/python", "-P", "-c", check],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_command_has_one_group_and_help_lists_the_groups_not_the_internal_ones():
    assert list(_commands(build_parser())) and set(_commands(build_parser())) == set(COMMAND_GROUPS)
    proc = subprocess.run(
        [sys.executable, "-m", "swarm", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    listed = {}  # command -> the heading it is listed under
    heading = None
    for line in proc.stdout.splitlines():
        if line in (FOR_YOU, FOR_AGENTS):
            heading = line
        elif heading and (found := re.match(r"  (\w+) {2,}\S", line)):
            listed[found.group(1)] = heading
        elif not line.startswith(" "):
            heading = None
    assert listed == {name: group for name, group in COMMAND_GROUPS.items() if group != INTERNAL}
    assert list(listed) == [name for name in COMMAND_GROUPS if name in listed]  # the table's order
    for internal in ("runner", "coordinator", "launch", "agent"):
        assert COMMAND_GROUPS[internal] == INTERNAL and not re.search(rf"^ +{internal} ", proc.stdout, re.M)
    # Hidden, and still there for the tool that starts them.
    args = build_parser("runner").parse_args(["runner", "--gpu", "3"])
    assert (args.handler, args.gpu) == ("swarm.runner.service:cmd_runner", "3")
    args = build_parser("launch").parse_args(["launch", "gpu0", "--tag", "t"])
    assert args.handler == "swarm.orchestration.launch:cmd_launch"


def test_the_commands_agents_are_told_to_run_are_the_agents_group():
    """program.md and the API agent's whitelist name what agents run: all of it is under "for agents"
    (`swarm status`, which program.md mentions too, is everyone's)."""
    program = (REPO_ROOT / "program.md").read_text()
    told = set(re.findall(r"^ {4}swarm (\w+)", program, flags=re.M)) | set(SWARM_SUBCOMMANDS)
    agents = {name for name, group in COMMAND_GROUPS.items() if group == FOR_AGENTS}
    assert told - {"status"} == agents


def test_spawn_names_the_agents_kind_with_kind_and_still_takes_the_old_agent():
    parser = build_parser("spawn")
    for flag in ("--kind", "--agent"):
        args = parser.parse_args(["spawn", "--cpu", "2", "--agents", "4", flag, "sweep:2,optuna"])
        assert (args.kind, args.agents) == ("sweep:2,optuna", 4)
    usage = _commands(parser)["spawn"].format_help()
    assert "--kind KIND" in usage and "--agent " not in usage and "--agent\n" not in usage


def test_each_package_docstring_is_the_map_of_its_modules():
    """The one map of the code: each package's docstring names every module and sub-package in it (an
    indented line starting with `name.py` or `name/`), and nothing that is not there."""
    for init in sorted((REPO_ROOT / "swarm").rglob("__init__.py")):
        package = init.parent
        doc = ast.get_docstring(ast.parse(init.read_text()), clean=False) or ""
        named = set(re.findall(r"^ +(\w+\.py|\w+/) ", doc, flags=re.M))
        present = {p.name for p in package.glob("*.py") if p.name != "__init__.py"}
        present |= {d.name + "/" for d in package.iterdir() if (d / "__init__.py").exists()}
        where = init.relative_to(REPO_ROOT)
        assert not present - named, f"{where}: add to its docstring: {sorted(present - named)}"
        assert not named - present, (
            f"{where}: its docstring names what is not there: {sorted(named - present)}"
        )


TOP_DIRECTORIES = ("swarm", "tests", "bench", "scripts", "docs", "deploy")
REFERENCES = re.compile(
    r"(?<![\w/.-])("
    r"(?:\.\./)+[\w./-]*\w"  # relative to the file, up and out of its directory
    r"|(?:" + "|".join(TOP_DIRECTORIES) + r")/[\w./-]*[\w/]"  # from the repository root: docs/noise.md
    r"|[A-Z][A-Z_]+\.md"  # a root document: README.md
    r")"
)


def _prose(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every docstring and comment of a Python file."""
    source = path.read_text()
    found = [
        (node.body[0].lineno, ast.get_docstring(node) or "")
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and ast.get_docstring(node)
    ]
    with path.open() as f:
        found += [
            (t.start[0], t.string) for t in tokenize.generate_tokens(f.readline) if t.type == tokenize.COMMENT
        ]
    return found


def test_docstrings_and_comments_name_only_files_that_exist():
    """A reference to a document outside the repository (the team's notes beside it, say) sends a reader
    to a file they do not have."""
    dangling = []
    for top in ("swarm", "tests", "bench", "scripts"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            for line, text in _prose(path):
                for reference in REFERENCES.findall(text):
                    base = path.parent if reference.startswith("..") else REPO_ROOT
                    target = (base / reference).resolve()
                    if target.exists() and target.is_relative_to(REPO_ROOT):
                        continue
                    dangling.append(f"{path.relative_to(REPO_ROOT)}:{line}: {reference}")
    assert not dangling, "\n".join(dangling)


def test_no_import_cycles():
    """No two modules of swarm import each other, directly or through others, counting imports inside
    functions (scripts/layout_report.py prints the cycles it finds)."""
    spec = importlib.util.spec_from_file_location("layout_report", REPO_ROOT / "scripts/layout_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    assert report.import_cycles("swarm") == []
    # the finder itself: a cycle through a function-level import is one
    assert report.strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [
        ["a", "b", "c"],
        ["d"],
    ]
