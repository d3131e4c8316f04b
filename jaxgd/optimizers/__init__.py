"""Optimizers: building blocks wired together, hyperparameters held in the state."""
