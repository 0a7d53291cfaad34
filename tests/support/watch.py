"""Helpers for `swarm watch` tests: boards of real files, an app driven headless, polling with a deadline."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from swarm.board.experiments import evolve, new_experiment
from swarm.board.noise import NoiseSettings
from swarm.board.run_record import SwarmRecord, write_run_record
from swarm.board.store import Board
from swarm.testing.synthetic import H100, agent_slots
from swarm.tui.app import WatchApp
from swarm.tui.model import WatchModel

T0 = 1_767_225_600.0  # fixed times: nothing in a rendered frame depends on the wall clock
SIZE = (200, 50)


def make_board(
    directory: Path, agents: int = 2, tag: str = "t1", base: str = "0" * 40, repo: str = "/r"
) -> Board:
    board = Board(directory).create()
    slots = agent_slots(agents, repo=repo, tag=tag)
    write_run_record(board, SwarmRecord(tag=tag, base=base, profile="h100", agents=slots, created_at=T0))
    return board


def experiment(
    agent: str = "gpu0", status: str = "queued", at: float = T0 + 60, **fields: Any
) -> dict[str, Any]:
    fields.setdefault("gpu", agent.removeprefix("gpu"))
    fields.setdefault("description", "wider model")
    return new_experiment(agent=agent, device=H100, profile="h100", status=status, submitted_at=at, **fields)


def finish(
    record: dict[str, Any], val: float, status: str = "keep", sha: str | None = None, at: float | None = None
):
    started = record.get("started_at") or record["submitted_at"] + 1
    return evolve(
        record,
        status=status,
        val_bpb=val,
        train_sha256=sha or f"sha-{record['id']}",
        started_at=started,
        finished_at=at or started + 320,
        training_seconds=300.1,
    )


def append_result(
    board: Board, agent: str, at: float, value: float | None, status: str, sha: str, **fields: Any
) -> dict[str, Any]:
    """An experiment submitted at `at` and its final record, both on the board; `value` None: a result without
    a val_bpb (a crash, an invalid run). Returns the final record."""
    record = experiment(agent, at=at, **fields)
    final = finish(record, 0.0 if value is None else value, status=status, sha=sha)
    if value is None:
        final = {**final, "val_bpb": None}
    board.append(record)
    board.append(final)
    return final


def start(record: dict[str, Any], at: float | None = None):
    return evolve(record, status="running", started_at=at or record["submitted_at"] + 1)


def app_for(
    board: Board, repo: Path | None = None, now: float = T0 + 3600, control_for=None, **kwargs
) -> WatchApp:
    # the synthetic boards hold single runs: bests by the `single` noise rule (one run is a best)
    noise = kwargs.pop("noise", NoiseSettings(rule="single"))
    model = WatchModel(board.directory, repo, control_for=control_for, clock=lambda: now, noise=noise)
    return WatchApp(model, repo, board.directory, interval=kwargs.pop("interval", 0.05), **kwargs)


async def wait_for(
    pilot, condition: Callable[[], Any], what: str | Callable[[], str], timeout: float = 20.0
) -> Any:
    """Let the app run until `condition()` holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            what = what() if callable(what) else what  # a description built at the time of failure
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


async def refreshed(pilot, app: WatchApp, count: int = 1) -> None:
    """Wait for `count` more board refreshes to be applied than were before the call."""
    target = app.refreshes + count
    await wait_for(pilot, lambda: app.refreshes >= target, f"{count} board refresh(es)")


def run(scenario: Callable[[], Any]) -> None:
    asyncio.run(scenario())


def cell_text(table, row_key: str, column_key: str) -> str:
    return str(table.get_cell(row_key, column_key))


def screen_lines(app) -> list[str]:
    """The text of each line of the app's screen, as its SVG screenshot draws it."""
    lines: dict[int, str] = {}
    svg = app.export_screenshot()
    for number, text in re.findall(
        r'<text [^>]*clip-path="url\(#terminal-\d+-line-(\d+)\)">(.*?)</text>', svg
    ):
        lines[int(number)] = lines.get(int(number), "") + html.unescape(text).replace("\xa0", " ")
    return [lines[n] for n in sorted(lines)]
