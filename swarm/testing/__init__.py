"""Fixtures shipped with the package for tests, benches and scripts only (import-linter keeps every other
package from importing them).

    fake_model.py        a scriptable fake model server on loopback, for every agent kind
    fake_model_wire.py   how it writes one scripted reply in each protocol
    synthetic.py         plausible boards of a long run, for benchmarks, screenshots and display tests
"""
