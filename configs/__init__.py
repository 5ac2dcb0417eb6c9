"""Per-model default hyperparameters and presets."""
