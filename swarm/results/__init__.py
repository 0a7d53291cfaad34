"""What people do with results: text output, the read-only board commands, export, plot and pick."""
