"""The agent side: the commands agents type in their worktree, agent kinds and their prompts, and the
built-in agents. Long story: docs/agents.md.

    commands.py   handlers of the agent commands: run, submit, wait, grid, queue, verify, note, adopt
    protocol.py   jobs from an agent's side: who is calling, submitting HEAD, waiting for a result
    waves.py      several experiments in flight at once, collected together
    adopt.py      `swarm adopt`: move an agent's branch to another experiment's commit, losing nothing
    kinds.py      each agent kind's command line (built-in and from swarm.toml), and mixes of kinds
    prompts.py    the first prompt of an LLM agent and its resume prompt after a restart
    relay.py      a CLI agent's JSON events as readable lines, and its usage in the ledger
    api/          the model-API agent (`swarm agent api`)
    sweep/        the sweep agent, no LLM (`swarm agent sweep`)
    optuna/       the Optuna agent, no LLM (`swarm agent optuna`)
"""
