"""Test fixtures shipped with the package for tests, benches and scripts only (import-linter keeps every
other package from importing them): the fake model server and synthetic boards."""
