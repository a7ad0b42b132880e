"""Shared mechanics every algorithm uses: hyperparameters, estimator base, training loop, artifacts."""
