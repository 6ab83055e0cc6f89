"""A ModelOp PySpark model that shuts down cleanly when it is stopped: it installs a SIGTERM
handler (what EMR Serverless sends first when a run is cancelled with a grace period), then works
for a long time. To test cancellation with ``EMR_CANCEL_GRACE_PERIOD_SECONDS``.

The job names a local directory with ``--conf spark.modelop.test.marker.dir=<path>`` (local
Spark and the test share a file system): the model writes ``started`` there once its handler is
in place, and the handler writes ``shutdown-hook`` (and prints a line) before the driver exits.
"""

import os
import signal
import sys
import time

from pyspark.sql import SparkSession

HOOK_LINE = "graceful_model: shutdown hook ran (SIGTERM)"


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    spark = SparkSession.builder.getOrCreate()
    marker_dir = spark.sparkContext.getConf().get("spark.modelop.test.marker.dir")
    if not marker_dir:
        raise ValueError("graceful_model needs --conf spark.modelop.test.marker.dir")

    def on_sigterm(signum, frame):
        with open(os.path.join(marker_dir, "shutdown-hook"), "w") as f:
            f.write("{} at {:.3f}\n".format(HOOK_LINE, time.time()))
        print(HOOK_LINE, flush=True)
        sys.exit(143)

    signal.signal(signal.SIGTERM, on_sigterm)
    rows = spark.range(1000).count()
    with open(os.path.join(marker_dir, "started"), "w") as f:
        f.write("counted {} rows\n".format(rows))
    print("graceful_model: counted {} rows, now working for 10 minutes".format(rows), flush=True)
    time.sleep(600)
    return {"finished": True}
