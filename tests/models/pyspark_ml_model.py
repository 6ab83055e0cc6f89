"""A ModelOp PySpark model built on pyspark.ml, as ModelOp's own Spark examples are (a German-credit
pipeline: train, then score with the trained pipeline): a VectorAssembler + LogisticRegression
pipeline on the sample input (data/sample_input.csv, "high" = label > 10). pyspark.ml imports
numpy, so this model runs only where the Spark's Python has it, as EMR Serverless's image does:
the local runs' test that they give Python models what EMR does (tests/emulator/test_emr_serverless.py).
"""

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def _labelled(external_inputs):
    spark = SparkSession.builder.getOrCreate()
    frame = spark.read.csv(external_inputs[0]["fileUrl"], header=True, inferSchema=True)
    return frame.withColumn("high", (F.col("label") > 10).cast("double"))


# modelop.train
def train(external_inputs, external_outputs, external_model_assets):
    """Fits the pipeline, saves it to the first output, and scores the input with the saved one."""
    frame = _labelled(external_inputs)
    pipeline = Pipeline(stages=[
        VectorAssembler(inputCols=["x1", "x2"], outputCol="features"),
        LogisticRegression(featuresCol="features", labelCol="high", maxIter=20),
    ])
    fitted = pipeline.fit(frame)
    location = external_outputs[0]["fileUrl"]
    fitted.write().overwrite().save(location)
    scored = PipelineModel.load(location).transform(frame)
    rows = scored.count()
    correct = scored.where(F.col("prediction") == F.col("high")).count()
    coefficients = fitted.stages[-1].coefficients  # a DenseVector: numpy underneath
    return {"rows": rows, "accuracy": round(correct / rows, 3), "coefficients": [round(float(c), 6) for c in coefficients.toArray()]}


def _pipeline_location(external_model_assets):
    """The trained pipeline among the model's assets: a folder (an s3:// prefix, mirrored locally)."""
    folders = [a["fileUrl"] for a in external_model_assets or [] if a.get("fileUrl") and "pipeline" in (a.get("name") or "")]
    if not folders:
        raise ValueError("no 'pipeline' model asset: score and metrics need the pipeline a training job saved")
    return folders[0]


# modelop.score
def score(external_inputs, external_outputs, external_model_assets):
    """Scores the input with the pipeline a training job saved (a model asset), writing the predictions."""
    frame = _labelled(external_inputs)
    scored = PipelineModel.load(_pipeline_location(external_model_assets)).transform(frame)
    scored.select("id", "x1", "x2", "prediction").write.mode("overwrite").csv(external_outputs[0]["fileUrl"], header=True)
    return {"rows": scored.count(), "predictedHigh": scored.where(F.col("prediction") == 1.0).count()}


# modelop.metrics
def metrics(external_inputs, external_outputs, external_model_assets):
    """Tests the saved pipeline on the input: its accuracy against the label."""
    scored = PipelineModel.load(_pipeline_location(external_model_assets)).transform(_labelled(external_inputs))
    rows = scored.count()
    return {"rows": rows, "accuracy": round(scored.where(F.col("prediction") == F.col("high")).count() / rows, 3)}
