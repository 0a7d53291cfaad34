"""`swarm plot`: a PNG of the run's progress from a board of 200 real records."""

import matplotlib.image

from swarm import cli
from swarm.board.experiments import new_experiment
from swarm.board.progress import from_experiments
from swarm.testing.synthetic import synthetic_run, write_board
from tests.support.gitrepo import make_repo


def test_progress_tracks_the_running_best_in_finishing_order():
    def done(eid, val, at, status="discard", agent="gpu0"):
        fields = dict(id=eid, agent=agent, device="cpu", profile="tiny", status=status, finished_at=at)
        if val is not None:
            fields.update(val_bpb=val, train_sha256="sha" + eid)
        return new_experiment(**fields)

    records = [
        done("c", 0.95, 30.0, "keep", agent="gpu1"),
        done("a", 1.00, 10.0, "keep"),
        done("b", None, 20.0, "crash"),
        done("d", 0.97, 40.0),
        done("e", 0.90, 50.0, "keep"),
    ]
    group = from_experiments(records).main_group()
    assert [p.record["id"] for p in group.points] == ["a", "b", "c", "d", "e"]
    assert [(s.index, s.value, s.id) for s in group.best] == [(0, 1.0, "a"), (2, 0.95, "c"), (4, 0.90, "e")]
    assert [s.id for s in group.agent_best["gpu0"]] == ["a", "d", "e"]
    assert [s.id for s in group.agent_best["gpu1"]] == ["c"]


def test_plot_writes_a_png_from_a_board_of_200_records(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    # the run record and 199 results
    records = list(synthetic_run(agents=4, experiments=250, lifecycle=False))[:200]
    write_board(repo / "board", records)
    monkeypatch.chdir(repo)
    monkeypatch.delenv("SWARM_BOARD", raising=False)

    assert cli.main(["plot", "progress.png"]) == 0
    assert "wrote progress.png" in capsys.readouterr().out
    image = matplotlib.image.imread(repo / "progress.png")
    height, width = image.shape[:2]
    assert width == 1760 and height == 770  # 16 x 7 inches at 110 dpi, one panel
    # kept experiments are drawn as green dots: the picture has a good number of that green
    green = ((abs(image[..., 0] - 0x2C / 255) < 0.02) & (abs(image[..., 1] - 0xA0 / 255) < 0.02)).sum()
    assert green > 200


def test_plot_of_an_empty_board_is_a_clear_error(tmp_path, monkeypatch, capsys):
    repo = make_repo(tmp_path / "repo")
    write_board(repo / "board", [])
    monkeypatch.chdir(repo)
    monkeypatch.delenv("SWARM_BOARD", raising=False)
    assert cli.main(["plot", "x.png"]) == 1
    assert "no measured results on the board yet" in capsys.readouterr().err
    assert not (repo / "x.png").exists()
