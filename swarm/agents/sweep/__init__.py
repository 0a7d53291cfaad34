"""The built-in sweep agent (no LLM): one-factor moves and small factorial waves over train.py's knobs."""
