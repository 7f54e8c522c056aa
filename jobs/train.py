"""spark-submit entry point of the `train` step.

spark-submit --jars $(cat dist/jars.txt) --py-files dist/mobility.zip jobs/train.py --profile cluster
"""

from mobility.cli import run_job

if __name__ == "__main__":
    run_job("train")
