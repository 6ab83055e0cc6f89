"""A ModelOp PySpark model that fails its first attempt and succeeds on the next, to test EMR
Serverless retries (``--conf modelop.serverless.job.max.attempts``).

The job names a marker file with ``--conf spark.modelop.test.marker=<local path>`` (local Spark
and the test share a file system): the first attempt finds no marker, writes it and raises; a
later attempt finds it and succeeds.
"""

import os

from pyspark.sql import SparkSession

FAILURE_MESSAGE = "flaky_model: the first attempt fails on purpose"


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    spark = SparkSession.builder.getOrCreate()
    marker = spark.sparkContext.getConf().get("spark.modelop.test.marker")
    if not marker:
        raise ValueError("flaky_model needs --conf spark.modelop.test.marker")
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("attempt 1 ran\n")
        print("flaky_model: first attempt, failing", flush=True)
        raise RuntimeError(FAILURE_MESSAGE)
    print("flaky_model: a later attempt, succeeding", flush=True)
    return {"retried": True, "rows": spark.range(10).count()}
