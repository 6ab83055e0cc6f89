"""A ModelOp PySpark model that reads, besides its declared input, an S3 object its job does not
name: with per-job least privilege the run's session policy does not allow it, so the read fails
with AccessDenied (and the job's failure class is PERMISSION) while the declared input is read.

It calls S3 through boto3 with the run's own credentials (on EMR Serverless, the job execution
role narrowed by the run's policy; in the emulator, a gateway that evaluates the policy).
"""

import boto3

DATA_BUCKET = "modelop-data"
DECLARED_KEY = "input/sample_input.csv"
UNDECLARED_KEY = "private/other_team.csv"


# modelop.score
def action(external_inputs, external_outputs, external_model_assets):
    s3 = boto3.client("s3")
    declared = s3.get_object(Bucket=DATA_BUCKET, Key=DECLARED_KEY)["Body"].read()
    print(f"undeclared_read_model: read its declared input ({len(declared)} bytes)")
    s3.get_object(Bucket=DATA_BUCKET, Key=UNDECLARED_KEY)
    raise RuntimeError("undeclared_read_model: the undeclared object could be read; the run is not scoped")
