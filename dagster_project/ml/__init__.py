"""Models: MLflow tracking and registry, interval forecasts, retraining, synthetic data."""
