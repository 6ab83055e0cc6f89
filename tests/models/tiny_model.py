"""A ModelOp PySpark model that does almost nothing, for tests that need many cheap runs."""

from pyspark.sql import SparkSession


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    return {"rows": SparkSession.builder.getOrCreate().range(5).count()}
