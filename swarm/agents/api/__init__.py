"""The model-API agent: a bounded tool-use loop (agent), its HTTP client, its context window and its tools."""
