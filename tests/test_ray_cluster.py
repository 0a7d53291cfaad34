"""A swarm on a real local multi-node Ray cluster: `swarm spawn --ray`, results on the head's board, a node
that dies mid-run, a node that joins, screen -> validate across device classes, and a clean teardown.

The cluster (tests/support/ray_cluster.py: a head and one node per fake GPU, each GPU with an accelerator
type) lives in a private network namespace with only loopback; every swarm process that talks to Ray runs
in it too (`nsenter`), so nothing leaves this machine, and the test checks that no listener of the
namespace is on anything but loopback. The board, worktrees and tmux socket are files, shared with the
test. Real tiny-profile train.py runs train the first experiment and its confirmation, sealed on their
nodes (the trainer in its bubblewrap sandbox hands over its model, the evaluator measures it in its own);
the fault drill uses a trainer that waits for the test's signal, so that the node is removed while it
trains (it hands over no model, so it ends `invalid`, recorded once).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from swarm.board.store import Board
from tests.support.shell import clear_identity, outside_environ, tmux_servers
from tests.support.standins import make_repo, write_standin_config
from tests.support.swarm_run import STAND_IN_CONFIG, commit_train, wait_until
from tests.support.target import REPO_ROOT

pytestmark = [
    pytest.mark.slow,  # a local multi-node Ray cluster, a swarm spawned on it
    pytest.mark.skipif(not shutil.which("unshare") or os.geteuid() != 0, reason="needs unshare as root"),
]

WAITING_TRAIN = textwrap.dedent(
    '''\
    """A trainer that waits until the test says so ($STANDIN_STATE_DIR/RELEASE), then claims a result but
    hands over no model: the evaluator on the node finds none, so the run is `invalid` (never a number)."""
    import os, time
    from prepare import PROFILES

    state = os.environ["STANDIN_STATE_DIR"]
    with open(os.path.join(state, "events"), "a") as f:
        f.write(f"start {os.getpid()}\\n")
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(state, "RELEASE")) and time.time() < deadline:
        time.sleep(0.05)
    print("---")
    print("val_bpb:          2.500000")
    print("training_seconds: 1.0")
    print(f"profile:          {os.environ['AUTORESEARCH_PROFILE']}")
    '''
)


def waiting(release: str) -> str:
    """A trainer that waits for $STANDIN_STATE_DIR/<release>."""
    return WAITING_TRAIN.replace("RELEASE", release)


class LocalCluster:
    """The cluster holder process (in its own network namespace) and commands run beside it."""

    def __init__(self, directory: Path, classes: list[str], env: dict[str, str]):
        self.directory = directory
        self.proc = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, "-m"]
            + ["tests.support.ray_cluster", str(directory), ",".join(classes)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: (directory / "cluster.json").exists() or self.proc.poll() is not None, timeout=90)
        assert self.proc.poll() is None, "the cluster did not come up"
        # read once the holder is in its namespace (unshare has run): the namespace every Ray process shares
        self.namespace = os.readlink(f"/proc/{self.proc.pid}/ns/net")
        assert self.namespace != os.readlink("/proc/self/ns/net")
        info = json.loads((directory / "cluster.json").read_text())
        self.address = info["address"]
        self.nodes: dict[str, str] = info["nodes"]  # node id -> device class

    def node(self, device: str) -> str:
        return next(n for n, d in self.nodes.items() if d == device)

    def command(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """A command inside the cluster's network namespace."""
        return subprocess.run(
            ["nsenter", f"--net=/proc/{self.proc.pid}/ns/net", "--", *argv],
            capture_output=True,
            text=True,
            **kwargs,
        )

    def listeners(self) -> list[str]:
        """Local addresses (hex, as /proc shows them) of the namespace's listening TCP sockets."""
        found = []
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/{self.proc.pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    found.append(fields[1].rsplit(":", 1)[0])
        return found

    def processes(self) -> list[int]:
        """Every process in the cluster's network namespace."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.readlink(entry / "ns" / "net") == self.namespace:
                        pids.append(int(entry.name))
                except OSError:
                    continue
        return pids

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def is_loopback(hex_address: str) -> bool:
    if len(hex_address) == 8:  # IPv4, little-endian: 127.x.x.x ends in 7F
        return hex_address.endswith("7F")
    if hex_address.startswith("0000000000000000FFFF0000"):  # ::ffff:127.x.x.x (IPv4-mapped)
        return hex_address.endswith("7F")
    return hex_address == "00000000000000000000000001000000"  # ::1


@pytest.fixture
def swarm_env(tmp_path, tiny_cache, monkeypatch):
    clear_identity(monkeypatch, "RAY_ADDRESS")
    state = tmp_path / "standin"
    state.mkdir()
    env = outside_environ(
        ("SWARM_", "RAY_"),
        SWARM_TMUX_DIR=str(tmp_path / "sock"),
        AUTORESEARCH_CACHE_DIR=str(tiny_cache),
        STANDIN_STATE_DIR=str(state),
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO_ROOT),
    )
    with tmux_servers(tmp_path / "sock"):
        yield env


def test_swarm_on_a_ray_cluster(tmp_path, swarm_env):
    repo = make_repo(
        tmp_path / "repo",
        {
            ".gitignore": "/worktrees/*\n/board/*\n",
            "prepare.py": (REPO_ROOT / "prepare.py").read_text(),
            "train.py": (REPO_ROOT / "train.py").read_text(),
        },
    )
    write_standin_config(repo, tmp_path / "reports")
    with open(repo / "swarm.toml", "a") as f:
        f.write('verify_best = false\n[ray]\nprepare_args = ["--source", "local"]\nnode_poll_s = 0.5\n')
        # a loaded 2-core machine can overshoot by a slow step; the waiting trainers write the test's state
        # directory from inside their sandboxes
        f.write("[runner]\nbudget_tolerance_s = 30.0\n" + STAND_IN_CONFIG)
        # one run decides (no calibration or confirmation reruns: each would be another real run here;
        # the screen -> confirm path is the board's, the same on a cluster, tested in test_confirmation.py)
        f.write('[noise]\nrule = "single"\n')
    cluster = LocalCluster(tmp_path, ["H100", "H200"], swarm_env)
    try:
        with tmux_servers(tmp_path / "sock"):
            _drill(cluster, repo, swarm_env)
    finally:
        cluster.close()
    # the cluster and every swarm process that joined it are gone (Ray's workers take a while on a busy box)
    try:
        wait_until(lambda: not cluster.processes(), timeout=90, interval=0.5)
    except AssertionError:
        left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:120] for pid in cluster.processes()}
        raise AssertionError(f"processes left in the cluster's namespace: {left}") from None


def _drill(cluster: LocalCluster, repo: Path, env: dict[str, str]) -> None:
    board = Board(repo / "board")
    spawned = cluster.run(
        [sys.executable, "-m", "swarm", "spawn", "--ray", cluster.address, "--kind", "standin"]
        + ["--profile", "tiny", "--validate-on", "H200", "--tag", "ray1"],
        cwd=repo,
        env=env,
        timeout=120,
    )
    assert spawned.returncode == 0, spawned.stdout + spawned.stderr
    # one agent per screening GPU (the H200 validates), on the head, queueing for its class
    (run,) = [r for r in board.records() if r["type"] == "run"]
    assert [(a["name"], a["gpu"], a["device"]) for a in run["agents"]] == [("h100-0", "ray:H100", "H100")]
    assert run["cluster"] == cluster.address and run["validate_on"] == "H200"
    listeners = cluster.listeners()
    assert listeners and all(is_loopback(a) for a in listeners), listeners

    # a real tiny-profile experiment lands on the head's board, trained on the H100 node
    worktree = repo / "worktrees" / "h100-0"
    first = submit(worktree, env, (repo / "train.py").read_text() + "\n# baseline\n", "baseline")
    done = wait_final(board, first, timeout=240)
    h100, h200 = cluster.node("H100"), cluster.node("H200")
    assert done["status"] == "keep", (done["reason"], (board.directory / done["log"]).read_text()[-1500:])
    assert done["node"].startswith(h100[:8]) and done["gpu"] == f"{h100[:8]}/0" and done["device"] == "H100"
    assert 0 < done["val_bpb"] < 10 and done["prepare_sha256"] and done["train_sha256"]
    # sealed on the node: the number is the evaluator's (run there, sandboxed), measured from the model
    assert done["evaluation"] == "sealed" and not done.get("unsealed") and done["eval_seconds"] > 0
    log = (board.directory / done["log"]).read_text()
    assert '"outcome": "measured"' in log and "CUDA_VISIBLE_DEVICES=" in log

    # the screening best gets a confirmation run on the validator class, recorded in that class
    confirmations = poll(lambda: [e for e in experiments(board) if e.get("validate_of") == first["id"]])
    assert [(c["device"], c["requested_by"], c["commit"]) for c in confirmations] == [
        ("H200", "validate-on", first["commit"])
    ]

    # a node joins; then a job's node dies while it trains: it is requeued once and trains elsewhere
    joined = cluster.command("add H100")
    second = submit(worktree, env, waiting("second"), "waits for the test")
    running = poll(lambda: started(board, second, env, 1))
    lost = running["node"].split("@")[0]
    assert cluster.command(f"remove {lost}") == "removed"
    retried = poll(lambda: attempt_running(board, second, 2), timeout=60)
    assert not retried["node"].startswith(lost) and retried["device"] == "H100"
    Path(env["STANDIN_STATE_DIR"], "second").touch()
    final = wait_final(board, second, timeout=60)
    assert final["status"] == "invalid" and final["attempt"] == 2, final  # sealed: no model, no number
    assert {joined[:8], h100[:8]} >= {running["node"][:8], final["node"][:8]}
    history = [r for r in board.records() if r.get("id") == second["id"]]
    assert [r["status"] for r in history].count("queued") == 2  # requeued once, recorded once
    assert "was lost" in next(
        r["reason"] for r in history if r.get("attempt") == 2 and r["status"] == "queued"
    )

    confirmation = wait_final(board, confirmations[0], timeout=240)
    assert confirmation["node"].startswith(h200[:8]) and confirmation["status"] != "crash", confirmation
    best = subprocess.run(
        [sys.executable, "-m", "swarm", "best", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    screened = next(b for b in json.loads(best.stdout) if b["device"] == "H100")
    assert (
        screened["id"] == first["id"] and screened["other_classes"]["H200"]["n"] == 1
    )  # both numbers, apart

    # the head's runner dies (kill -9) mid-run: the coordinator restarts it, it reattaches to the cluster
    # and requeues what was running; the job is recorded once
    third = submit(worktree, env, waiting("third"), "survives a head restart")
    poll(lambda: started(board, third, env, 3))
    head_runner = [r["pid"] for r in board.records() if r["type"] == "runner" and r["event"] == "start"][-1]
    os.kill(head_runner, signal.SIGKILL)
    poll(lambda: attempt_running(board, third, 2), timeout=90)
    Path(env["STANDIN_STATE_DIR"], "third").touch()
    final = wait_final(board, third, timeout=60)
    history = [r["status"] for r in board.records() if r.get("id") == third["id"]]
    assert final["attempt"] == 2 and history.count(final["status"]) == 1, history
    assert "the Ray runner died" in next(
        r["reason"]
        for r in board.records()
        if r.get("id") == third["id"] and r["status"] == "queued" and r.get("attempt") == 2
    )

    status = subprocess.run(
        [sys.executable, "-m", "swarm", "status", "--json"], cwd=repo, env=env, capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    assert {a["runner"] for a in json.loads(status.stdout)["agents"]} == {"running"}
    shown = subprocess.run(
        [sys.executable, "-m", "swarm", "board", "--agent", "h100-0"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    assert final["node"] in shown.stdout, shown.stdout


def poll(condition, timeout: float = 30.0):
    return wait_until(condition, timeout, interval=0.2)  # each look reads the board: not 50 times a second


def submit(worktree: Path, env: dict[str, str], source: str, message: str) -> dict:
    commit_train(worktree, source, message)
    proc = subprocess.run(
        [sys.executable, "-m", "swarm", "submit", "-m", message, "--json"],
        cwd=worktree,
        env={**env, "SWARM_AGENT": "h100-0", "SWARM_GPU": "ray:H100", "SWARM_TAG": "ray1"}
        | {"SWARM_BOARD": str(worktree.parents[1] / "board")},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def experiments(board: Board) -> list[dict]:
    latest = {}
    for r in board.records():
        if r["type"] == "experiment":
            latest[r["id"]] = r
    return list(latest.values())


def latest_of(board: Board, job: dict) -> dict:
    return next(e for e in experiments(board) if e["id"] == job["id"])


def wait_final(board: Board, job: dict, timeout: float) -> dict:
    final = ("keep", "marginal", "discard", "crash", "timeout", "invalid")
    return poll(lambda: (e := latest_of(board, job))["status"] in final and e, timeout=timeout)


def started(board: Board, job: dict, env: dict[str, str], trainers: int) -> dict | None:
    """The job's running record once the test's `trainers`-th waiting trainer has started on a node."""
    events = Path(env["STANDIN_STATE_DIR"], "events")
    count = events.read_text().count("start") if events.exists() else 0
    e = latest_of(board, job)
    return e if e["status"] == "running" and count >= trainers else None


def attempt_running(board: Board, job: dict, attempt: int) -> dict | None:
    e = latest_of(board, job)
    return e if e["status"] == "running" and e["attempt"] == attempt else None
