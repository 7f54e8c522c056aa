"""spark-submit entry point of the `publish` step.

spark-submit --jars $(cat dist/jars.txt) --py-files dist/mobility.zip jobs/publish.py --profile cluster
"""

from mobility.cli import run_job

if __name__ == "__main__":
    run_job("publish")
