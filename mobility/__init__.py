"""Professional mobility analytics: trajectories and job offers on Spark and Delta Lake, models in MLflow."""

import os

__version__ = "0.1.0"

# MLflow 3 sends usage telemetry and writes an installation id under ~/.config unless told not to: data of
# a public employment service's runs stays on its machines. A user may still turn it on explicitly.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
