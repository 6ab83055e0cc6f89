"""A small ModelOp PySpark model, used to test the ModelOp PySpark driver.

Each entry point is marked the ModelOp way, with a `# modelop.<role>` comment line directly above
its `def`. Inputs and outputs are ModelOp assets: dicts whose "fileUrl" is a URI Spark can read or
write (s3://... on EMR Serverless, a local path when run on a laptop).

The input is a CSV with a header and the numeric columns x1, x2 and label (see
data/sample_input.csv).
"""

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

FEATURES = ("x1", "x2")
TARGET = "label"

# The fixed scoring formula: score = 1.0 + 0.5 * x1 + 2.0 * x2
INTERCEPT = 1.0
COEFFICIENTS = {"x1": 0.5, "x2": 2.0}

MODEL_STATE = {"initialized": False}


def _spark():
    return SparkSession.builder.getOrCreate()


def _read_input(external_inputs):
    if not external_inputs:
        raise ValueError("this model needs one input asset (a CSV file)")
    url = external_inputs[0]["fileUrl"]
    return _spark().read.csv(url, header=True, inferSchema=True)


def _output_url(external_outputs):
    if not external_outputs:
        raise ValueError("this model needs one output asset")
    return external_outputs[0]["fileUrl"]


def _score_column():
    expression = F.lit(INTERCEPT)
    for name, weight in COEFFICIENTS.items():
        expression = expression + F.lit(weight) * F.col(name).cast("double")
    return expression


# modelop.init
def begin():
    MODEL_STATE["initialized"] = True
    MODEL_STATE["intercept"] = INTERCEPT
    MODEL_STATE["coefficients"] = dict(COEFFICIENTS)
    print("spark_sample_model: begin() initialized the model", flush=True)


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    print(
        "spark_sample_model: action() called, initialized={}".format(MODEL_STATE["initialized"]),
        flush=True,
    )
    scored = _read_input(external_inputs).withColumn("score", _score_column())
    scored = scored.cache()
    row_count = scored.count()
    (
        scored.coalesce(1)
        .write.mode("overwrite")
        .option("header", True)
        .csv(_output_url(external_outputs))
    )
    scored.unpersist()
    return {
        "initialized": MODEL_STATE["initialized"],
        "rowCount": row_count,
        "columns": scored.columns,
    }


# modelop.metrics
def metrics(external_inputs, external_outputs, external_model_assets):
    df = _read_input(external_inputs).withColumn("score", _score_column())
    aggregates = [F.count(F.lit(1)).alias("rowCount"), F.avg("score").alias("meanScore")]
    aggregates += [F.avg(name).alias("mean_" + name) for name in FEATURES + (TARGET,)]
    row = df.agg(*aggregates).collect()[0]
    # ModelOp metrics functions yield their results.
    yield {
        "rowCount": int(row["rowCount"]),
        "meanScore": float(row["meanScore"]),
        "mean_x1": float(row["mean_x1"]),
        "mean_x2": float(row["mean_x2"]),
        "mean_label": float(row["mean_label"]),
    }


def _solve(matrix, vector):
    """Solves matrix * x = vector by Gaussian elimination with partial pivoting."""
    size = len(vector)
    rows = [list(matrix[i]) + [vector[i]] for i in range(size)]
    for col in range(size):
        pivot = max(range(col, size), key=lambda r: abs(rows[r][col]))
        if abs(rows[pivot][col]) < 1e-12:
            raise ValueError("the training data is degenerate (singular normal equations)")
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(size):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col])]
    return [rows[i][size] / rows[i][i] for i in range(size)]


# modelop.train
def train(external_inputs, external_outputs, external_model_assets):
    """Least-squares fit of label ~ intercept + x1 + x2, from sums computed by Spark."""
    df = _read_input(external_inputs)
    terms = ["one"] + list(FEATURES)
    columns = {"one": F.lit(1.0)}
    columns.update({name: F.col(name).cast("double") for name in FEATURES})
    target = F.col(TARGET).cast("double")
    sums = []
    for i, a in enumerate(terms):
        for b in terms[i:]:
            sums.append(F.sum(columns[a] * columns[b]).alias("xx_{}_{}".format(a, b)))
        sums.append(F.sum(columns[a] * target).alias("xy_{}".format(a)))
    row = df.agg(*sums).collect()[0]

    def xx(a, b):
        i, j = sorted((terms.index(a), terms.index(b)))
        return float(row["xx_{}_{}".format(terms[i], terms[j])])

    normal_matrix = [[xx(a, b) for b in terms] for a in terms]
    normal_vector = [float(row["xy_{}".format(a)]) for a in terms]
    solution = _solve(normal_matrix, normal_vector)
    row_count = int(xx("one", "one"))
    summary = {
        "rowCount": row_count,
        "features": list(FEATURES),
        "intercept": solution[0],
        "coefficients": {name: solution[i + 1] for i, name in enumerate(FEATURES)},
    }
    model_url = _output_url(external_outputs)
    _spark().createDataFrame(
        [(summary["intercept"], summary["coefficients"]["x1"], summary["coefficients"]["x2"], row_count)],
        "intercept double, coef_x1 double, coef_x2 double, rowCount long",
    ).coalesce(1).write.mode("overwrite").json(model_url)
    print("spark_sample_model: train() saved the model to {}".format(model_url), flush=True)
    return summary
