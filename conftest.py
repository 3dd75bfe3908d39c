# __main__ runs the CLI on import: keep it out of --doctest-modules collection.
collect_ignore = ["lifecycle/__main__.py"]
