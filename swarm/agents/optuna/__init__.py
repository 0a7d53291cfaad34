"""The Optuna agent (no LLM): a TPE (or random) search of train.py's hyperparameters, one study per run.
Its trials are ordinary experiments; docs/agents.md tells the rest.

    agent.py   `swarm agent optuna`: the loop that asks the shared study and submits its trials
    space.py   the search space: one Optuna distribution per knob of train.py's hyperparameter block
"""
