"""A ModelOp PySpark model that works for a long time, to test cancelling a running job."""

import time

from pyspark.sql import SparkSession


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    spark = SparkSession.builder.getOrCreate()
    print("slow_model: counted {} rows, now working for 10 minutes".format(spark.range(1000).count()), flush=True)
    time.sleep(600)
    return {"finished": True}
