//! The public-text table: failure texts as people posted them in public bug reports, each with
//! the class [`super::classify::classify_failure`] must give it.

use super::classify::classify_failure;
use super::*;

/// Where a row's text comes from.
enum Given {
    Record(&'static str, &'static str),
    State(&'static str),
    Stderr(&'static str),
    Submit(&'static str),
    Timing(RunTiming),
}

/// The evidence a row must carry. `None` means absent, except `exception_type`, which is
/// checked only when given.
#[derive(Clone, Copy)]
struct Expect {
    exit_code: Option<i32>,
    module: Option<&'static str>,
    resource: Option<&'static str>,
    exception_type: Option<&'static str>,
}

const NONE: Expect = Expect { exit_code: None, module: None, resource: None, exception_type: None };

fn classify(given: &Given) -> Failure {
    let record;
    let mut inputs = FailureInputs::default();
    match given {
        Given::Record(exception_type, message) => {
            record = ModelErrorRecord { exception_type: exception_type.to_string(), message: message.to_string(), traceback_tail: String::new() };
            inputs.model_error = Some(&record);
        }
        Given::State(details) => inputs.state_details = Some(details),
        Given::Stderr(stderr) => inputs.stderr_tail = Some(stderr),
        Given::Submit(message) => inputs.submit_error = Some(message),
        Given::Timing(timing) => inputs.timing = Some(*timing),
    }
    classify_failure(&inputs)
}

/// Failure texts as people posted them in public bug reports (stateDetails, driver stderr,
/// what the model raised), each with the class it must give. Account ids, bucket, user and
/// host names are replaced by placeholders (111122223333, example-bucket, example-user, 10.0.0.1).
fn table() -> Vec<(Given, FailureClass, &'static str, Expect)> {
    use FailureClass::*;
    use Given::*;
    vec![
        // https://github.com/aws-samples/emr-serverless-samples/issues/56 (what the model raised)
        (Record("ModuleNotFoundError", "No module named 'great_expectations'"), MissingDependency,
         "The model imports module 'great_expectations', which is not installed on the Spark image",
         Expect { module: Some("great_expectations"), exception_type: Some("ModuleNotFoundError"), ..NONE }),
        // https://github.com/aws-samples/emr-serverless-samples/issues/56 (driver stderr)
        (Stderr("Traceback (most recent call last):\n  File \"/tmp/spark-adc7d82f-ca5d-41ca-8d69-a89f144589a0/ge_profile.py\", line 4, in <module>\n    import great_expectations as ge\nModuleNotFoundError: No module named 'great_expectations'\n"),
         MissingDependency, "module 'great_expectations'", Expect { module: Some("great_expectations"), exception_type: Some("ModuleNotFoundError"), ..NONE }),
        // https://github.com/apache/spark/pull/603 (Python 2 wording, no quotes)
        (Stderr("Error from python worker:\n  : No module named pyspark\nPYTHONPATH was:\n  /path/to/spark/python:/path/to/some/jar\njava.io.EOFException"),
         MissingDependency, "module 'pyspark'", Expect { module: Some("pyspark"), ..NONE }),
        // https://github.com/awslabs/amazon-emr-cli/issues/32 (stateDetails)
        (State("Job failed, please check complete logs in configured logging destination. ExitCode: 1. Last few exceptions: Caused by: java.io.IOException: error=2, No such file or directory\nException in thread \"main\" java.io.IOException: Cannot run program \"./environment/bin/python\": error=2, No such file or directory..."),
         MissingDependency, "The Python environment './environment/bin/python' could not be started",
         Expect { exit_code: Some(1), resource: Some("./environment/bin/python"), ..NONE }),
        // https://github.com/aws-samples/emr-serverless-samples/pull/17 (stateDetails)
        (State("Job execution failed, please check complete logs in configured logging destination. ExitCode: 1. Last few exceptions: IndentationError: unexpected indent..."),
         ModelError, "The model raised IndentationError: unexpected indent...", Expect { exit_code: Some(1), exception_type: Some("IndentationError"), ..NONE }),
        // https://github.com/aws-samples/emr-serverless-samples/pull/17 (what the model raised)
        (Record("AttributeError", "'EMRServerless' object has no attribute 'describe_job_run'"), ModelError,
         "The model raised AttributeError: 'EMRServerless' object has no attribute 'describe_job_run'", Expect { exception_type: Some("AttributeError"), ..NONE }),
        // https://github.com/GoogleCloudPlatform/data-science-on-gcp/issues/10 (a UDF of the model raised)
        (Stderr("Caused by: org.apache.spark.api.python.PythonException: Traceback (most recent call last):\n  File \"/usr/lib/spark/python/lib/pyspark.zip/pyspark/worker.py\", line 177, in main\n    process()\n  File \"/tmp/7fa836049f5f469b85f5eb082a72c77c/logistic.py\", line 92, in to_example\n    features.extend(get_local_hour(fields['DEP_TIME'],\n  File \"/usr/lib/spark/python/lib/pyspark.zip/pyspark/sql/types.py\", line 1491, in __getitem__\n    raise ValueError(item)\nValueError: DEP_TIME\n"),
         ModelError, "The model raised ValueError: DEP_TIME", Expect { exception_type: Some("ValueError"), ..NONE }),
        // https://github.com/LearningJournal/Spark-Programming-In-Python/issues/3
        (Stderr("21/07/16 14:01:56 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform... using builtin-java classes where applicable\nTraceback (most recent call last):\n  File \"/home/example-user/anaconda3/lib/python3.8/configparser.py\", line 846, in items\n    d.update(self._sections[section])\nKeyError: 'SPARK_APP_CONFIGS'\n\nDuring handling of the above exception, another exception occurred:\n\nTraceback (most recent call last):\n  File \"/home/example-user/HelloSpark.py\", line 7, in <module>\n    conf = get_spark_app_config()\n  File \"/home/example-user/anaconda3/lib/python3.8/configparser.py\", line 849, in items\n    raise NoSectionError(section)\nconfigparser.NoSectionError: No section: 'SPARK_APP_CONFIGS'"),
         ModelError, "The model raised configparser.NoSectionError: No section: 'SPARK_APP_CONFIGS'", Expect { exception_type: Some("configparser.NoSectionError"), ..NONE }),
        // https://github.com/softeerbootcamp-8th/DE_team4-4una/issues/508 (stateDetails of a driver killed for memory)
        (State("Job failed, please check complete logs in configured logging destination. ExitCode: 137. Last few exceptions: Worker has been killed as memory usage exceeded configured memory size, consider increasing memory size..."),
         OutOfMemory, "killed for using more memory than it was given", Expect { exit_code: Some(137), ..NONE }),
        // https://github.com/astrolabsoftware/fink-broker/issues/281
        (Stderr("  File \"/opt/spark-2/python/lib/py4j-0.10.7-src.zip/py4j/protocol.py\", line 328, in get_return_value\npy4j.protocol.Py4JJavaError: An error occurred while calling o39516.save.\n: java.lang.OutOfMemoryError: Java heap space\n\tat java.util.Arrays.copyOf(Arrays.java:3332)\n\tat java.lang.AbstractStringBuilder.ensureCapacityInternal(AbstractStringBuilder.java:124)"),
         OutOfMemory, "Spark ran out of memory (java.lang.OutOfMemoryError: Java heap space)", Expect { exception_type: Some("java.lang.OutOfMemoryError"), ..NONE }),
        // https://github.com/googlecolab/colabtools/issues/3050 (what the model raised)
        (Record("Py4JJavaError", "An error occurred while calling o448.fit.\n: java.lang.OutOfMemoryError: Java heap space"), OutOfMemory,
         "Java heap space", Expect { exception_type: Some("Py4JJavaError"), ..NONE }),
        // https://github.com/theislab/single-cell-tutorial/issues/85 (what the model raised)
        (Record("numpy.core._exceptions.MemoryError", "Unable to allocate 926. GiB for an array with shape (6794880, 36601) and data type float32"), OutOfMemory,
         "The model ran out of memory", Expect { exception_type: Some("numpy.core._exceptions.MemoryError"), ..NONE }),
        // https://github.com/yahoo/TensorFlowOnSpark/issues/282
        (Stderr("18/05/16 00:53:32 ERROR YarnClusterScheduler: Lost executor 6 on worker-1.example.internal: Container killed by YARN for exceeding memory limits. 8.2 GB of 8 GB physical memory used. Consider boosting spark.yarn.executor.memoryOverhead.\n18/05/16 00:53:32 WARN TaskSetManager: Lost task 1.3 in stage 0.0 (TID 7, worker-1.example.internal, executor 6): ExecutorLostFailure (executor 6 exited caused by one of the running tasks) Reason: Container killed by YARN for exceeding memory limits. 8.2 GB of 8 GB physical memory used. Consider boosting spark.yarn.executor.memoryOverhead.\n18/05/16 00:53:32 ERROR TaskSetManager: Task 1 in stage 0.0 failed 4 times; aborting job"),
         OutOfMemory, "exceeding its memory limit (8.2 GB of 8 GB physical memory used)", NONE),
        // https://github.com/kubeflow/spark-operator/issues/766
        (Stderr("20/01/10 00:51:07 INFO BlockManagerMaster: Removed 1 successfully in removeExecutor\n20/01/10 00:51:08 ERROR TaskSchedulerImpl: Lost executor 1 on 10.0.0.1:\nThe executor with id 1 exited with exit code 137.\nThe API gave the following brief reason: null"),
         OutOfMemory, "(exit code 137)", Expect { exit_code: Some(137), ..NONE }),
        // https://github.com/softeerbootcamp-8th/DE_team4-4una/issues/508 (driver log of a run starved by the application's capacity)
        (Stderr("06:01:42 ExecutorContainerAllocator: Going to request 2 executors ... already provisioned: 0.\nApplicationMaxCapacityExceededException: Worker could not be allocated as the application has exceeded maximumCapacity settings: [memory: 48 GB, disk: 200 GB]"),
         Capacity, "The EMR Serverless application's maximum capacity was reached (memory: 48 GB, disk: 200 GB)",
         Expect { exception_type: Some("ApplicationMaxCapacityExceededException"), ..NONE }),
        // https://github.com/bentoml/bentoctl/issues/202 (an account's vCPU quota)
        (Stderr("creating EC2 Instance: VcpuLimitExceeded: You have requested more vCPU capacity than your current vCPU limit of 32 allows for the instance bucket that the specified instance type belongs to. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."),
         Capacity, "An AWS account quota was reached", NONE),
        // https://github.com/delta-io/delta-sharing/issues/73
        (Stderr("io.delta.sharing.server.DeltaInternalException: java.util.concurrent.ExecutionException: java.nio.file.AccessDeniedException:  s3a://example-bucket/foo/foo_fact/_delta_log: getFileStatus on s3a://example-bucket/foo/foo_fact/_delta_log: com.amazonaws.services.s3.model.AmazonS3Exception: Forbidden (Service: Amazon S3; Status Code: 403; Error Code: 403 Forbidden; Request ID: C0DZXXXYNWKQ9CWD; S3 Extended Request ID: example=), S3 Extended Request ID: example="),
         Permission, "Access denied on S3 s3a://example-bucket/foo/foo_fact/_delta_log: the job's role lacks permission",
         Expect { resource: Some("s3a://example-bucket/foo/foo_fact/_delta_log"), exception_type: Some("java.nio.file.AccessDeniedException"), ..NONE }),
        // https://github.com/aws-samples/emr-serverless-samples/pull/11
        (Stderr("com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: Access Denied (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"),
         Permission, "Access denied on S3; the log does not name the resource",
         Expect { exception_type: Some("com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception"), ..NONE }),
        // https://github.com/aws-samples/emr-serverless-samples/pull/11 (the KMS key of the data)
        (Stderr("com.amazon.ws.emr.hadoop.fs.shaded.com.amazonaws.services.s3.model.AmazonS3Exception: The ciphertext refers to a customer master key that does not exist, does not exist in this region, or you are not allowed to access. (Service: Amazon S3; Status Code: 403; Error Code: AccessDenied)"),
         Permission, "Access denied by KMS", NONE),
        // https://github.com/ministryofjustice/modernisation-platform-environments/pull/10745
        (Stderr("Message: com.amazonaws.services.s3.model.AmazonS3Exception: User: arn:aws:sts::111122223333:assumed-role/example-role/example-session is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-west-2:111122223333:key/example-key because no identity-based policy allows the kms:Decrypt action"),
         Permission, "Access denied: the job's role may not kms:Decrypt on arn:aws:kms:eu-west-2:111122223333:key/example-key",
         Expect { resource: Some("arn:aws:kms:eu-west-2:111122223333:key/example-key"), ..NONE }),
        // https://github.com/apache/kyuubi/pull/4952 (Spark on the Glue catalog)
        (Stderr("Caused by: software.amazon.awssdk.services.glue.model.AccessDeniedException: User: arn:aws:iam::111122223333:user/example-user is not authorized to perform: glue:GetDatabase on resource: arn:aws:glue:us-east-1:111122223333:database/default because no identity-based policy allows the glue:GetDatabase action (Service: Glue, Status Code: 400, Request ID: 3f816608-0cb2-467b-9181-05c5bfcd29b3, Extended Request ID: null)"),
         Permission, "may not glue:GetDatabase on arn:aws:glue:us-east-1:111122223333:database/default",
         Expect { resource: Some("arn:aws:glue:us-east-1:111122223333:database/default"), exception_type: Some("software.amazon.awssdk.services.glue.model.AccessDeniedException"), ..NONE }),
        // https://github.com/awslabs/sagemaker-explaining-credit-decisions/issues/2
        (Stderr("AnalysisException: 'java.lang.RuntimeException: MetaException(message:Unable to verify existence of default database: com.amazonaws.services.glue.model.AccessDeniedException: Please migrate your Catalog to enable access to this database (Service: AWSGlue; Status Code: 400; Error Code: AccessDeniedException; Request ID: b5f4516c-0451-4a55-a015-b64f7761e21f));'"),
         Permission, "Access denied on Glue", Expect { exception_type: Some("com.amazonaws.services.glue.model.AccessDeniedException"), ..NONE }),
        // https://github.com/grycap/scar/issues/301 (what the model raised)
        (Record("botocore.exceptions.ClientError", "An error occurred (AccessDenied) when calling the PutObject operation: Access Denied"), Permission,
         "(PutObject)", Expect { exception_type: Some("botocore.exceptions.ClientError"), ..NONE }),
        // Spark 3.4+ wording (https://github.com/apache/spark/pull/38422), with an S3 path as it is quoted in public READMEs
        (Stderr("pyspark.errors.exceptions.captured.AnalysisException: [PATH_NOT_FOUND] Path does not exist: s3a://example-bucket/sample_data."),
         InputNotFound, "The input s3a://example-bucket/sample_data does not exist",
         Expect { resource: Some("s3a://example-bucket/sample_data"), exception_type: Some("pyspark.errors.exceptions.captured.AnalysisException"), ..NONE }),
        // https://github.com/feast-dev/feast/issues/2921
        (Stderr("    raise converted from None\npyspark.sql.utils.AnalysisException: Path does not exist: file:/data\n"),
         InputNotFound, "The input file:/data does not exist", Expect { resource: Some("file:/data"), ..NONE }),
        // https://github.com/databricks/spark-redshift/issues/38
        (Stderr("org.apache.hadoop.mapreduce.lib.input.InvalidInputException: Input path does not exist: s3://example-bucket/19380690-5730-451a-b741-8245b27da674\n  at org.apache.hadoop.mapreduce.lib.input.FileInputFormat.listStatus(FileInputFormat.java:285)"),
         InputNotFound, "does not exist", Expect { resource: Some("s3://example-bucket/19380690-5730-451a-b741-8245b27da674"), ..NONE }),
        // https://github.com/apache/sedona/issues/2650
        (Stderr("java.io.FileNotFoundException: No such file or directory: s3://example-bucket/raw-data/53033C_20250330/S_FLD_HAZ_AR.???\n\tat org.apache.hadoop.fs.s3a.S3AFileSystem.s3GetFileStatus(S3AFileSystem.java:4156)"),
         InputNotFound, "does not exist", Expect { resource: Some("s3://example-bucket/raw-data/53033C_20250330/S_FLD_HAZ_AR.???"), exception_type: Some("java.io.FileNotFoundException"), ..NONE }),
        // https://github.com/perwendel/spark/issues/1289
        (Stderr("Error-org.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage 150.0 failed 4 times, most recent failure: Lost task 1.3 in stage 150.0 (TID 426) (10.0.0.1 executor 6): java.lang.NullPointerException"),
         SparkError, "Spark failed the run: Error-org.apache.spark.SparkException: Job aborted due to stage failure", NONE),
        // https://github.com/munhouiani/Deep-Packet/issues/1
        (Stderr("20/06/07 19:20:42 ERROR TaskSetManager: Task 1 in stage 9.0 failed 1 times; aborting job\n20/06/07 19:20:42 ERROR FileFormatWriter: Aborting job b0aa29b9-042f-4362-9d54-de936645d883.\norg.apache.spark.SparkException: Job aborted due to stage failure: Task 1 in stage 9.0 failed 1 times, most recent failure: Lost task 1.0 in stage 9.0 (TID 408, localhost, executor driver): org.apache.spark.SparkException: Python worker exited unexpectedly (crashed)\n        at org.apache.spark.api.python.BasePythonRunner$ReaderIterator$$anonfun$3.applyOrElse(PythonRunner.scala:490)"),
         SparkError, "Spark failed the run: org.apache.spark.SparkException: Job aborted", Expect { exception_type: Some("org.apache.spark.SparkException"), ..NONE }),
        // https://github.com/Soname-Solutions/salmon/pull/114 (stateDetails that say nothing more)
        (State("Job failed"), Unknown, "The run failed, and neither EMR nor the driver log says why", NONE),
        // The head of the stateDetails of https://github.com/awslabs/amazon-emr-cli/issues/32, without its exceptions
        (State("Job failed, please check complete logs in configured logging destination. ExitCode: 1."), Unknown,
         "The run failed with exit code 1", Expect { exit_code: Some(1), ..NONE }),
        // https://github.com/aws-samples/aws-emr-utilities/pull/175 (EMR Serverless refuses the run at deploy)
        (State("FAILED: Maximum value of spark.dynamicAllocation.initialExecutors: 3 must be between spark.dynamicAllocation.minExecutor 1 and spark.dynamicAllocation.maxExecutors 2."),
         InvalidJob, "EMR Serverless refused the run's configuration before Spark ran: FAILED: Maximum value of spark.dynamicAllocation.initialExecutors: 3 must be between", NONE),
        // https://github.com/boto/boto3/issues/3860, as submit ends a job with it (`job <id>: <step>: <cause>`)
        (Submit("job job-7: start job run: EMR Serverless StartJobRun failed: ValidationException: Unknown configuration overrides classification: spark-hive-site"),
         InvalidJob, "Submit refused the job before it ran: start job run: EMR Serverless StartJobRun failed: ValidationException: Unknown configuration overrides classification: spark-hive-site", NONE),
        // What submit rejects today (tests/submit.rs)
        (Submit("job job-7: validate job: the primary source has no function annotated '# modelop.score'"), InvalidJob,
         "Submit refused the job before it ran: validate job: the primary source has no function annotated '# modelop.score'", NONE),
        // GetJobRun of a run that reached its executionTimeoutMinutes
        (Timing(RunTiming { execution_timeout_minutes: Some(30), execution_seconds: Some(1_795), ..RunTiming::default() }), Timeout,
         "The run exceeded its execution timeout of 30 minutes", NONE),
        // GetJobRun of a run queued for the application's whole queueTimeoutMinutes
        (Timing(RunTiming { queue_timeout_minutes: Some(360), queued_millis: Some(21_600_000), execution_timeout_minutes: Some(720), execution_seconds: Some(0) }),
         QueueTimeout, "The run waited in the application's queue past its queue timeout of 360 minutes and never started", NONE),
    ]
}

#[test]
fn real_failure_texts_get_their_class() {
    for (given, class, summary, expect) in table() {
        let failure = classify(&given);
        let shown = format!("{failure:#?}");
        assert_eq!(failure.class, class, "{shown}");
        assert!(failure.summary.contains(summary), "summary lacks {summary:?}: {shown}");
        assert_eq!(failure.evidence.exit_code, expect.exit_code, "{shown}");
        assert_eq!(failure.evidence.module.as_deref(), expect.module, "{shown}");
        assert_eq!(failure.evidence.resource.as_deref(), expect.resource, "{shown}");
        if let Some(exception_type) = expect.exception_type {
            assert_eq!(failure.evidence.exception_type.as_deref(), Some(exception_type), "{shown}");
        }
        if !matches!(class, FailureClass::Unknown | FailureClass::Timeout | FailureClass::QueueTimeout) {
            assert!(failure.evidence.log_line.is_some(), "a class read from a text names its line: {shown}");
        }
    }
}

#[test]
fn the_table_covers_every_class_with_public_texts() {
    let rows = table();
    for class in FailureClass::ALL {
        assert!(rows.iter().any(|(_, c, _, _)| *c == class), "no row gives {class}");
    }
    let texts = rows.iter().filter(|(given, _, _, _)| !matches!(given, Given::Timing(_))).count();
    assert!(texts >= 20, "{texts} texts");
}
