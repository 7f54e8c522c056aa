"""spark-submit entry point of the whole pipeline (every built step, in order)."""

from mobility.cli import run_job

if __name__ == "__main__":
    run_job("pipeline")
