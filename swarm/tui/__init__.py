"""`swarm watch`: a Textual TUI over the discovery board and the run's tmux windows.

Layout of the package: `model` folds the board on a worker into frozen snapshots, `control` is the seam to
the run's processes, `messages` declares what widgets tell the app, and each widget is a module with its
CSS beside it; `app` wires them together and stays small.
"""
