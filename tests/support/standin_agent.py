"""A stand-in agent for spawn tests: reports how it was started, then waits to be killed.

Usage: standin_agent.py REPORT_DIR AGENT PROMPT. Each start appends one JSON line to REPORT_DIR/AGENT.jsonl
with its pid, working directory, swarm environment, a hash of $SWARM_TEST_SECRET (never the value) and
the start of its prompt.
"""

import hashlib
import json
import os
import signal
import sys
from pathlib import Path

report_dir, agent, prompt = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
secret = os.environ.get("SWARM_TEST_SECRET")
report = {
    "pid": os.getpid(),
    "cwd": os.getcwd(),
    "env": {
        k: v for k, v in os.environ.items() if k.startswith(("SWARM_", "CUDA_")) and k != "SWARM_TEST_SECRET"
    },
    "profile_set": "AUTORESEARCH_PROFILE" in os.environ,
    "secret_sha256": hashlib.sha256(secret.encode()).hexdigest() if secret else None,
    "prompt": prompt,
}
report_dir.mkdir(parents=True, exist_ok=True)
with open(report_dir / f"{agent}.jsonl", "a") as f:
    f.write(json.dumps(report) + "\n")
print(f"stand-in agent {agent} running", flush=True)
signal.pause()
