"""spark-submit entry point of the `generate` step.

spark-submit --jars $(cat dist/jars.txt) --py-files dist/mobility.zip jobs/generate.py --profile cluster
"""

from mobility.cli import run_job

if __name__ == "__main__":
    run_job("generate")
