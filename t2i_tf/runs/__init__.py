"""Run directories: the saved config of a run, and rebuilding a trained run (to chain models, evaluate, serve)."""
