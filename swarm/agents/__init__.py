"""The agent side of the protocol: submit / wait / adopt, the commands agents type, agent kinds, prompts,
the relay of CLI agents' JSON events, and the built-in agents (api/, sweep/)."""
