"""Professional mobility analytics: trajectories and job offers on Spark and Delta Lake, models in MLflow."""

__version__ = "0.1.0"
