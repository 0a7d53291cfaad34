"""The attack scripts' line protocol, for the isolation tests that run a hostile agent or train.py in its
sandbox: each attack prints `<name>: DONE` or `<name>: blocked (<error type>)`, and the test asserts on the
lines. Prepend ATTEMPT to a script's source."""

ATTEMPT = """\
import subprocess
def attempt(name, action):
    # a command that exits non-zero failed too: its last error line is the reason
    try:
        result = action()
        if isinstance(result, subprocess.CompletedProcess) and result.returncode != 0:
            raise OSError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed")
        print(f"{name}: DONE", flush=True)
    except Exception as e:
        print(f"{name}: blocked ({type(e).__name__})", flush=True)
"""
