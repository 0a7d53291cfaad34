"""What swarm knows of the research target (prepare.py / train.py): profiles, the summary block, and the
hyperparameter block."""
