"""What swarm knows of the research target (prepare.py / train.py), read without importing either.
The boundary of what an agent may change is a file boundary: train.py is theirs, prepare.py is not.

    profiles.py     prepare.py's PROFILES: sequence length, vocabulary, time budget, eval tokens
    data.py         the prepared data cache: where it is, its manifest, the evaluation files
    summary.py      the summary block train.py prints, and one parser for it
    hparams.py      train.py's hyperparameter block: read with `ast`, one value changed in place
    train_diff.py   what changed between two train.py versions, in a report reader's words
"""
