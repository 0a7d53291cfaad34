"""What the tests share, written once (the fixtures that wrap these are in tests/conftest.py):

- swarm_run: a real run (git repository, board, agent worktrees, stand-in trainers, runners), waits, look-ups.
- standins: a repository whose swarm.toml names the stand-in agent kind, and the reports its agents write.
- standin_agent: the stand-in agent program itself.
- shell: a shell outside any swarm: the swarm identity unset, tmux on a private socket, its servers killed.
- processes: processes as /proc shows them (what an agent or trainer left running, secrets on command lines).
- attacks: the attack scripts' `attempt()` line protocol, for hostile agents and trainers in sandboxes.
- target: the research target (prepare.py / train.py on the tiny profile).
- gitrepo: git repositories with knobs and agent commits, for pick and watch.
- lineage: a small run with a known lineage, for report and watch.
- watch: boards of real files and a headless app, for `swarm watch`.
- agent_scripts: scripted fake-model conversations for the API agent, Claude Code and Codex.
- ray_cluster: a local multi-node Ray cluster in a private network namespace.

Tests marked `slow` (pyproject.toml) are the end-to-end ones; `pytest -m "not slow"` is the edit loop.
"""
