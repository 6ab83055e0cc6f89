"""A model written the way ModelOp's own public Spark examples are written.

- `modelop/titanic-spark` `titanic.py`: `init()` builds the session into a global `SPARK`; `score` reads
  `external_inputs[0]["fileUrl"]`, writes `external_outputs[0]["fileUrl"]` and ends with `SPARK.stop()`.
- `modelop/german_credit_data_drift_detector_spark` `monitor.py`: inputs selected by `a["assetRole"]`,
  and a `FILE` model asset (its schema) opened by file name from the working directory.

It also reads a job parameter and the runtime's working folder from the Spark conf. Every line it
prints is something a test or the demo looks for in the driver's log.
"""

import json

from pyspark.sql import SparkSession

SPARK = None


# modelop.init
def init():
    global SPARK
    SPARK = SparkSession.builder.appName("ModelOpStyle").getOrCreate()


# modelop.score
def score(external_inputs, external_outputs, external_model_assets):
    df = SPARK.read.option("header", "true").csv(external_inputs[0]["fileUrl"])
    print("role", external_inputs[0]["assetRole"])
    schemas = [a for a in external_model_assets if a.get("assetRole") == "MODEL_SCHEMA"]
    for schema in schemas:
        with open(schema["filename"], encoding="utf-8") as handle:
            fields = json.load(handle)
        print("schema", schema["filename"], "fields", ",".join(f["name"] for f in fields))
    print("threshold", SPARK.conf.get("spark.modelop.threshold", "unset"))
    print("working folder", SPARK.conf.get("spark.modelop.job.workingDir", "unset"))
    print("rows", df.count())
    df.write.mode("overwrite").csv(external_outputs[0]["fileUrl"])
    SPARK.stop()
