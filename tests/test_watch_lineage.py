"""Lineage in `swarm watch`: the selected experiment's chain of steps across agents, and keys to move along it."""

from __future__ import annotations

from swarm.tui.detail import DetailPane
from swarm.tui.sources import MARK
from tests.support.lineage import lineage_run
from tests.support.watch import SIZE, app_for, refreshed, run, wait_for


def marked(detail: DetailPane) -> str:
    return next(line for line in detail.text.splitlines() if line.startswith(f"  {MARK}"))


def test_lineage_view_and_moving_along_it(tmp_path):
    lineage = lineage_run(tmp_path)
    ids = lineage.ids

    async def scenario():
        app = app_for(lineage.board, repo=lineage.repo)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            detail = app.query_one(DetailPane)
            await pilot.press("tab")  # the leaderboard: its first row is the best
            await wait_for(
                pilot, lambda: app.selected_record and app.selected_record["id"] == ids["depth"], "best"
            )
            await pilot.press("g")
            await wait_for(pilot, lambda: detail.kind == "lineage", "the lineage view")
            rows = [line for line in detail.text.splitlines() if line[4:6].strip().isdigit()]
            assert [r.replace(MARK, " ").split()[1] for r in rows[1:]] == [
                ids["lr"],
                ids["code"],
                ids["depth"],
            ]
            assert "1.001000" in rows[0] and "gpu1 < gpu0" in rows[2] and "-0.030000" in rows[2]
            assert ids["depth"] in marked(detail) and "+0.941000"[1:] in marked(detail)

            await pilot.press("left_square_bracket")
            await wait_for(pilot, lambda: ids["code"] in marked(detail), "the step before")
            assert app.selected_record["id"] == ids["code"]
            await pilot.press("left_square_bracket", "left_square_bracket")  # past the first step: stays
            await wait_for(pilot, lambda: ids["lr"] in marked(detail), "the first step")

            await pilot.press("d")  # keys act on the marked step
            await wait_for(pilot, lambda: detail.kind == "diff" and detail.subject == ids["lr"], "its diff")
            await wait_for(pilot, lambda: "+MATRIX_LR = 0.03" in detail.text, "the diff text")
            await pilot.press("g")  # back to the same lineage, still at that step
            await wait_for(pilot, lambda: detail.kind == "lineage", "the lineage again")
            assert ids["lr"] in marked(detail) and detail.subject == ids["depth"]
            await pilot.press("right_square_bracket", "right_square_bracket")
            await wait_for(pilot, lambda: ids["depth"] in marked(detail), "the last step")

    run(scenario)


def test_lineage_keys_without_a_lineage_say_what_to_do(tmp_path):
    lineage = lineage_run(tmp_path)

    async def scenario():
        app = app_for(lineage.board, repo=lineage.repo)
        async with app.run_test(size=SIZE) as pilot:
            await refreshed(pilot, app)
            await pilot.press("left_square_bracket")
            await pilot.pause(0.1)
            assert any("press g first" in str(n.message) for n in app._notifications)

    run(scenario)
