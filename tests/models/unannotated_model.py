"""A model with no `# modelop.*` annotations: ModelOp names its functions on the primary source
asset instead (`"initFunction": "setup"`, `"scoreFunction": "predict"`, as in
`modelop/titanic-spark` `job_submit/titanic_scoring_job.json`)."""

from pyspark.sql import SparkSession

STATE = {}


def setup():
    STATE["spark"] = SparkSession.builder.getOrCreate()
    print("unannotated_model: setup() called")


def predict(external_inputs, external_outputs, external_model_assets):
    df = STATE["spark"].read.option("header", "true").csv(external_inputs[0]["fileUrl"])
    print("unannotated_model: predict() read", df.count(), "rows")
    return {"rows": df.count()}
