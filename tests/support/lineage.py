"""A small run with a known lineage, in a real git repository: for `swarm report` and watch's lineage tests.

    base (DEPTH 8, MATRIX_LR 0.04, WEIGHT_DECAY 0.2)
      gpu0: baseline 1.000 (and gpu1's baseline 1.002: a repeat of the same content)
      gpu0: MATRIX_LR 0.04 -> 0.03                              0.980 keep      (lr)
      gpu0:   WEIGHT_DECAY 0.2 -> 0.1 on top of lr               0.990 discard   (a knob that did not work)
      gpu0:   WEIGHT_DECAY 0.2 -> 0.3 on top of lr               crash
      gpu1 adopts lr, then a code change on top of it            0.950 keep      (code, adopted from gpu0)
      gpu1:   DEPTH 8 -> 10 on top of code                       0.940 keep      (the best; rerun by gpu0: 0.942)
      gpu1:   DEPTH 8 -> 12 on top of code                       0.960 discard

The best's lineage is lr (gpu0) -> code (gpu1, adopted from gpu0) -> depth (gpu1). Descriptions and notes carry
Markdown and HTML an agent might type, which a report must show literally.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swarm.board.store import ADOPT, NOTE, USAGE, Board
from tests.support.gitrepo import commit_on, git, make_repo
from tests.support.watch import T0, append_result, experiment, finish, make_board

INJECTION = "**bold** <script>alert(1)</script> [link](http://evil.example) | cell"


@dataclass
class LineageRun:
    repo: Path
    board: Board
    base: str
    ids: dict[str, str]  # name -> experiment id
    commits: dict[str, str]  # name -> commit


def lineage_run(path: Path) -> LineageRun:
    repo = make_repo(path / "repo")
    base = git(repo, "rev-parse", "main")
    board = make_board(repo / "board", agents=2, base=base, repo=str(repo))
    ids: dict[str, str] = {}
    commits: dict[str, str] = {"base": base}
    clock = [T0]

    def result(name: str, agent: str, commit: str, parent: str, value: float | None, status: str, **fields):
        clock[0] += 400
        sha = "sha-base" if commit == base else f"sha-{name}"
        final = append_result(
            board, agent, clock[0], value, status, sha, commit=commit, parent=parent, base=base, **fields
        )
        ids[name] = final["id"]
        return final

    def change(name: str, branch: str, start: str, edits: dict[str, str]) -> tuple[str, str]:
        commit, parent = commit_on(repo, branch, start, edits, name)
        commits[name] = commit
        return commit, parent

    first_parent = "f" * 40  # the base's own parent: not an experiment
    result("baseline0", "gpu0", base, first_parent, 1.000, "keep", description="baseline")
    result("baseline1", "gpu1", base, first_parent, 1.002, "keep", description="baseline")
    lr = result("lr", "gpu0", *change("lr", "swarm/t1/gpu0", "main", {"MATRIX_LR = 0.04": "MATRIX_LR = 0.03"}),
                0.980, "keep", description="MATRIX_LR 0.04 -> 0.03")  # fmt: skip
    wd = {"WEIGHT_DECAY = 0.2": "WEIGHT_DECAY = 0.1"}
    result(
        "wd",
        "gpu0",
        *change("wd", "wd", commits["lr"], wd),
        0.990,
        "discard",
        description="WEIGHT_DECAY 0.2 -> 0.1",
    )
    wd3 = {"WEIGHT_DECAY = 0.2": "WEIGHT_DECAY = 0.3"}
    result(
        "wd3",
        "gpu0",
        *change("wd3", "wd3", commits["lr"], wd3),
        None,
        "crash",
        description="WEIGHT_DECAY 0.2 -> 0.3",
    )
    board.append({"type": ADOPT, "agent": "gpu1", "id": lr["id"], "commit": lr["commit"], "train_sha256": "sha-lr",
                  "device": lr["device"], "profile": "h100"})  # fmt: skip
    code = {"print('train')": "x = compute_loss(model)  # fused\nprint('train')"}
    result(
        "code",
        "gpu1",
        *change("code", "swarm/t1/gpu1", commits["lr"], code),
        0.950,
        "keep",
        description=INJECTION,
    )
    depth = result("depth", "gpu1", *change("depth", "swarm/t1/gpu1", commits["code"], {"DEPTH = 8": "DEPTH = 10"}),
                   0.940, "keep", description="DEPTH 8 -> 10")  # fmt: skip
    rerun = experiment("gpu0", commit=depth["commit"], parent=depth["parent"], base=base, at=clock[0] + 400,
                       verify_of=depth["id"], description=depth["description"])  # fmt: skip
    board.append(finish(rerun, 0.942, status="keep", sha="sha-depth"))
    deep = {"DEPTH = 8": "DEPTH = 12"}
    result(
        "deep",
        "gpu1",
        *change("deep", "deep", commits["code"], deep),
        0.960,
        "discard",
        description="DEPTH 8 -> 12",
    )
    board.append({"type": NOTE, "id": "n1", "agent": "gpu1", "text": "depth helps " + INJECTION})
    for agent, tokens, cost in (("gpu0", 1200, 0.25), ("gpu1", 3400, 0.75)):
        board.append(_usage(agent, tokens, cost))
    return LineageRun(repo, board, base, ids, commits)


def _usage(agent: str, tokens: int, cost: float) -> dict[str, Any]:
    return {"type": USAGE, "agent": agent, "tag": "t1", "kind": "api", "model": "m", "requests": 3,
            "input_tokens": tokens, "output_tokens": 0, "cost_usd": cost}  # fmt: skip
