"""What people do with results: the read-only board commands, text output, export, plot, pick and the
report. Long story: docs/report.md.

    commands.py   handlers of the read-only board commands: best, board, export
    queries.py    the text of `swarm best` and `swarm board`, rendered from the folded board
    answers.py    saved answers of those queries, so a repeated one costs a file read
    display.py    text shown to agents and people: result blocks, best lines, the board table
    standing.py   where a run stands in one device class and profile: its best against the baseline
    queues.py     the class queues as agents and people see them
    export.py     `swarm export`: upstream's results.tsv, plus agent and id
    output.py     where plot, export and report write, checked before anything is computed
    plot.py       `swarm plot`: the progress picture
    pick.py       `swarm pick`: bring a winning experiment into a branch
    lineage.py    the chain of experiments an experiment was built on
    holdout.py    holdout beside val: does the best's gain hold on rows nobody selected on?
    transfer.py   `swarm transfer`, and the report's part on transfer checks
    report.py     `swarm report`: the story of a run as a Markdown page
"""
