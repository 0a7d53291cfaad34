"""The model-API agent: a bounded tool-use loop against an Anthropic or OpenAI(-compatible) endpoint.
Its settings are `[api]` in swarm.toml; docs/agents.md tells the rest.

    agent.py     `swarm agent api`: its [api] settings, the loop, the budget and the usage records
    client.py    one model call in whichever protocol the endpoint speaks
    context.py   the bounded context: recent turns verbatim, older ones summarised
    tools.py     its tools and their whitelist: what a model may do in its worktree
"""
