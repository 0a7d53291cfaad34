"""The sweep agent (no LLM): one-factor moves and small factorial waves over train.py's knobs.
It follows program.md like any agent; docs/agents.md tells the rest.

    agent.py       `swarm agent sweep`: the loop that keeps its share of the slots busy
    proposals.py   what it tries next: one-factor moves around its best, then small waves
"""
