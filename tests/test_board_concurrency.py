"""32 writer processes append at once, some SIGKILLed mid-append: every acknowledged record is on the board
exactly once, every complete line parses except torn ones, and appends after a torn line still work."""

import os
import random
import signal
import subprocess
import sys
import textwrap

from swarm.board.store import Board

# Each writer appends records of mixed sizes (up to ~200 KB, so some kills land inside a write) and
# prints an id only after append() returned, i.e. after the record was fsynced: that is its acknowledgement.
WRITER = textwrap.dedent(
    """\
    import random, sys
    from swarm.board.store import Board
    board = Board(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    for k in range(int(sys.argv[3])):
        rid = f"w{sys.argv[2]}-{k}"
        board.append({"type": "experiment", "id": rid, "pad": "x" * rng.choice([10, 1000, 200000])})
        print(rid, flush=True)
    """
)


def test_concurrent_writers_with_kills(tmp_path):
    board = Board(tmp_path / "board").create()
    rng = random.Random(7)
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(board.directory), str(i), "40"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for i in range(32)
    ]
    victims = rng.sample(writers, 8)
    acked: list[str] = []
    for proc in victims:  # kill each victim after it acknowledged a few records, wherever it is then
        for _ in range(rng.randint(1, 5)):
            line = proc.stdout.readline()
            if line:
                acked.append(line.strip())
        proc.send_signal(signal.SIGKILL)
    for proc in writers:
        out, _ = proc.communicate(timeout=120)
        acked += out.split()
        if proc not in victims:
            assert proc.returncode == 0
    survivors = 24 * 40
    assert len(acked) >= survivors

    reader = board.reader()
    ids = [r["id"] for r in reader.read_new()]
    assert sorted(set(ids)) == sorted(ids), "a record appears twice"
    assert set(acked) <= set(ids), "an acknowledged record is missing"
    assert reader.skipped <= len(victims)  # only torn writes of killed writers fail to parse
    lines = board.path.read_bytes().split(b"\n")
    assert len([line for line in lines[:-1] if line]) == len(ids) + reader.skipped

    # a corrupted last line is skipped, and later appends still work
    with open(board.path, "ab") as f:
        f.write(b'{"type": "experiment", "id": "torn", "pad": "xx')
    board.append({"type": "experiment", "id": "after"})
    fresh = board.reader()
    assert [r["id"] for r in fresh.read_new()][-1] == "after"
    assert fresh.skipped == reader.skipped + 1
