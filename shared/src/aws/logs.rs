//! CloudWatch Logs: the end of a job run's driver log streams.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::config::retry::RetryConfig;
use aws_sdk_cloudwatchlogs::Client;

use super::{classify, AwsError, AwsErrorKind};
use crate::text::tail_bounded;
use crate::outcome::job_run::{LogReadPatience, LogTail};
use crate::ports::LogReader;

const SERVICE: &str = "CloudWatch Logs";
/// Events per GetLogEvents page; a page is also capped at 1 MB by the service.
const PAGE_EVENTS: i32 = 1000;
/// Calls at most for one tail: a bound on a service that never gives the token back, not an expected end (the
/// text is then marked truncated).
const MAX_CALLS: usize = 64;
/// Attempts per GetLogEvents call of a [`LogReadPatience::Paced`] read (the SDK's default is 3).
pub const PACED_MAX_ATTEMPTS: u32 = 8;

/// The retry configuration of one GetLogEvents call. `Once`: no retry, so a throttled call answers
/// at once. `Paced`: the SDK's standard mode ("Retry behavior", AWS SDKs and Tools reference guide:
/// exponential backoff with full jitter on `ThrottlingException` and transient errors, and a retry
/// quota), at most [`PACED_MAX_ATTEMPTS`] attempts, backoff capped at 10 s. The pace itself is the
/// reader's ([`CloudWatchLogReader::paced`]): the SDK's adaptive mode, which paces by throttling
/// answers alone, used about two thirds of the quota in a storm of 150 runs (tests/bench, step 8).
pub fn retry_config(patience: LogReadPatience) -> RetryConfig {
    match patience {
        LogReadPatience::Once => RetryConfig::disabled(),
        LogReadPatience::Paced => RetryConfig::standard().with_max_attempts(PACED_MAX_ATTEMPTS).with_max_backoff(Duration::from_secs(10)),
    }
}

#[derive(Debug, Clone)]
pub struct CloudWatchLogReader {
    client: Client,
    /// Spaces the calls of [`LogReadPatience::Paced`] reads, shared by every read of the process.
    pace: Option<Arc<tokio::sync::Mutex<tokio::time::Interval>>>,
}

impl CloudWatchLogReader {
    pub fn new(client: Client) -> Self {
        CloudWatchLogReader { client, pace: None }
    }

    /// [`LogReadPatience::Paced`] reads make at most `calls_per_second` GetLogEvents calls a second
    /// (first attempts; the SDK's retries of a throttled call wait their backoff), evenly spaced,
    /// never in a burst after a pause. GetLogEvents' quota is per account and Region and cannot be
    /// raised (CloudWatch Logs quotas; AWS knowledge center "cloudwatch-logs-throttling": "Distribute
    /// your API calls over time"), so a pace below it leaves room for every other reader.
    pub fn paced(mut self, calls_per_second: u32) -> Self {
        let mut interval = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(calls_per_second.max(1))));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.pace = Some(Arc::new(tokio::sync::Mutex::new(interval)));
        self
    }
}

#[async_trait]
impl LogReader for CloudWatchLogReader {
    /// Reads pages from the newest event backwards until `max_bytes` are covered or the stream's start is reached,
    /// so memory is bounded by about one page plus `max_bytes` whatever the stream's size. The start is where the
    /// service gives back the token it was passed: "Partially full or empty pages don't necessarily mean that
    /// pagination is finished" (GetLogEvents reference), so a page's size never ends the read, and the text read
    /// does not depend on where the service put its page boundaries.
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize, patience: LogReadPatience) -> Result<LogTail, AwsError> {
        let mut pages_newest_first: Vec<String> = Vec::new();
        let mut bytes = 0usize;
        let mut token: Option<String> = None;
        let mut reached_start = false;
        for _ in 0..MAX_CALLS {
            if let (LogReadPatience::Paced, Some(pace)) = (patience, &self.pace) {
                pace.lock().await.tick().await;
            }
            let result = self
                .client
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(false)
                .limit(PAGE_EVENTS)
                .set_next_token(token.clone())
                .customize()
                .config_override(aws_sdk_cloudwatchlogs::Config::builder().retry_config(retry_config(patience)))
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) => match classify(SERVICE, "GetLogEvents", e) {
                    err if err.is(AwsErrorKind::NotFound) => return Ok(LogTail::default()),
                    err => return Err(err),
                },
            };
            let mut text = String::new();
            for event in page.events() {
                let message = event.message().unwrap_or_default();
                text.push_str(message);
                if !message.ends_with('\n') {
                    text.push('\n');
                }
            }
            bytes += text.len();
            if !text.is_empty() {
                pages_newest_first.push(text);
            }
            let next = page.next_backward_token().map(str::to_string);
            if next.is_none() || next == token {
                reached_start = true;
                break;
            }
            if bytes >= max_bytes {
                break;
            }
            token = next;
        }
        let whole: String = pages_newest_first.into_iter().rev().collect();
        let (tail, cut) = tail_bounded(&whole, max_bytes);
        Ok(LogTail { text: tail.to_string(), truncated: cut || !reached_start, found: true })
    }
}

/// One GetLogEvents page of a stream read forward: its messages (without their line ends) and
/// `nextForwardToken`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForwardPage {
    pub messages: Vec<String>,
    pub next_forward_token: Option<String>,
}

/// The operator CLI's reads (`cli/`, `modelop-spark`): a stream forward from its head, page by
/// page (`logs`, `logs -f`; the CLI paces them), and whether the log group exists (`doctor`).
impl CloudWatchLogReader {
    /// One page from the head or from `token`, of the events at or after `start_time` (epoch
    /// milliseconds), which goes with every page as a paginator sends it: a token read against one
    /// filter is not a position in another (moto's count the filtered events); `None` when the
    /// stream does not exist.
    pub async fn forward_page(&self, group: &str, stream: &str, start_time: Option<i64>, token: Option<&str>) -> Result<Option<ForwardPage>, AwsError> {
        let result = self
            .client
            .get_log_events()
            .log_group_name(group)
            .log_stream_name(stream)
            .start_from_head(true)
            .set_start_time(start_time)
            .set_next_token(token.map(str::to_string))
            .send()
            .await;
        match result.map_err(|e| classify(SERVICE, "GetLogEvents", e)) {
            Ok(page) => Ok(Some(ForwardPage {
                messages: page.events().iter().map(|e| e.message().unwrap_or_default().trim_end_matches('\n').to_string()).collect(),
                next_forward_token: page.next_forward_token().map(str::to_string),
            })),
            Err(e) if e.is(AwsErrorKind::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// DescribeLogGroups with the name as prefix: whether a group of exactly that name exists.
    pub async fn log_group_exists(&self, group: &str) -> Result<bool, AwsError> {
        let output = self.client.describe_log_groups().log_group_name_prefix(group).send().await.map_err(|e| classify(SERVICE, "DescribeLogGroups", e))?;
        Ok(output.log_groups().iter().any(|g| g.log_group_name() == Some(group)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::canned_http::{CannedHttp, NoWait};
    use super::*;
    use crate::outcome::failure::{classify::classify_failure, FailureInputs};

    type Canned = (u16, Vec<(&'static str, &'static str)>, String);

    /// A GetLogEvents page: its events' messages (oldest first) and its `nextBackwardToken`.
    fn page(messages: &[&str], backward: &str) -> Canned {
        let events: Vec<_> = messages.iter().enumerate().map(|(i, m)| serde_json::json!({"timestamp": i, "message": m, "ingestionTime": i})).collect();
        let body = serde_json::json!({"events": events, "nextForwardToken": "f/end", "nextBackwardToken": backward});
        (200, vec![("content-type", "application/x-amz-json-1.1")], body.to_string())
    }

    /// CloudWatch Logs' answer above the GetLogEvents quota.
    fn throttled() -> Canned {
        (400, vec![("content-type", "application/x-amz-json-1.1")], r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string())
    }

    /// The read's result, its GetLogEvents calls, and the backoffs the SDK asked between them.
    async fn read_with(answers: Vec<Canned>, patience: LogReadPatience) -> (Result<LogTail, AwsError>, usize, Vec<std::time::Duration>) {
        let http = CannedHttp::new(answers);
        let no_wait = NoWait::default();
        let config = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .credentials_provider(CannedHttp::credentials())
            .sleep_impl(no_wait.sleep_impl())
            // No credentials cache: its load timeout would be a sleep too, and it is not a backoff.
            .identity_cache(aws_sdk_cloudwatchlogs::config::IdentityCache::no_cache())
            .stalled_stream_protection(aws_sdk_cloudwatchlogs::config::StalledStreamProtectionConfig::disabled())
            .http_client(http.client())
            .build();
        let tail = CloudWatchLogReader::new(Client::from_conf(config)).tail("/aws/emr-serverless", "stderr", 16384, patience).await;
        (tail, http.requests().len(), no_wait.asked())
    }

    /// The final state's read tries once: a throttled call is an answer at once, not a wait. The
    /// sweep's read retries a throttled call with the SDK's backoff (each wait at most 10 s) and
    /// gives up after [`PACED_MAX_ATTEMPTS`] attempts, so its work per job is bounded.
    #[tokio::test]
    async fn a_throttled_read_is_retried_only_when_paced_and_only_so_often() {
        let (once, calls, waits) = read_with(vec![throttled()], LogReadPatience::Once).await;
        assert_eq!((once.as_ref().map_err(|e| e.kind), calls, waits.len()), (Err(AwsErrorKind::Transient), 1, 0), "{once:?} {waits:?}");

        let (paced, calls, waits) = read_with(vec![throttled(), throttled(), page(&LINES, "b/1"), page(&[], "b/1")], LogReadPatience::Paced).await;
        assert_eq!((paced.map(|t| t.text), calls, waits.len()), (Ok(LINES.join("\n") + "\n"), 4, 2));

        let (gave_up, calls, waits) = read_with(vec![throttled(); PACED_MAX_ATTEMPTS as usize], LogReadPatience::Paced).await;
        assert_eq!((gave_up.map_err(|e| e.kind), calls), (Err(AwsErrorKind::Transient), PACED_MAX_ATTEMPTS as usize));
        assert_eq!(waits.len(), PACED_MAX_ATTEMPTS as usize - 1, "a backoff between each two attempts: {waits:?}");
        assert!(waits.iter().all(|w| *w <= std::time::Duration::from_secs(10)), "the backoff is capped at 10 s: {waits:?}");
    }

    async fn tail_of(pages: Vec<Canned>, max_bytes: usize) -> (LogTail, Vec<String>) {
        let http = CannedHttp::new(pages);
        let config = aws_sdk_cloudwatchlogs::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .credentials_provider(CannedHttp::credentials())
            .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::disabled())
            .http_client(http.client())
            .build();
        let tail = CloudWatchLogReader::new(Client::from_conf(config)).tail("/aws/emr-serverless", "stderr", max_bytes, LogReadPatience::Once).await.unwrap();
        (tail, http.requests())
    }

    const LINES: [&str; 4] = [
        "java.lang.OutOfMemoryError: Java heap space",
        "\tat org.apache.spark.memory.TaskMemoryManager.allocatePage(TaskMemoryManager.java:320)",
        "26/01/01 10:00:00 INFO ShutdownHookManager: Shutdown hook called",
        "26/01/01 10:00:01 INFO ShutdownHookManager: Deleting directory /tmp/spark-1",
    ];

    /// The GetLogEvents reference: "Partially full or empty pages don't necessarily mean that pagination is
    /// finished. As long as the nextBackwardToken ... returned is NOT equal to the nextToken that you passed into the
    /// API call, there might be more log events available." The same stream read in one page, or as an empty page,
    /// a partial page and the rest, gives the same tail, so the same failure class.
    #[tokio::test]
    async fn empty_and_partial_pages_do_not_end_the_read_early() {
        let whole = vec![page(&LINES, "b/1"), page(&[], "b/1")];
        let split = vec![page(&[], "b/1"), page(&LINES[2..], "b/2"), page(&[], "b/3"), page(&LINES[..2], "b/4"), page(&[], "b/4")];
        let (one, one_calls) = tail_of(whole, 16384).await;
        let (paged, paged_calls) = tail_of(split, 16384).await;
        assert_eq!(one, LogTail { text: LINES.join("\n") + "\n", truncated: false, found: true });
        assert_eq!(paged, one);
        let class = |tail: &LogTail| classify_failure(&FailureInputs { stderr_tail: Some(&tail.text), ..Default::default() }).class;
        assert_eq!(class(&paged), class(&one));
        assert_eq!(class(&one), crate::outcome::failure::FailureClass::OutOfMemory);
        assert_eq!(one_calls.len(), 2, "the read ends when the token comes back unchanged");
        assert_eq!(paged_calls.len(), 5);
        assert!(paged_calls[1].contains(r#""nextToken":"b/1""#) && paged_calls[4].contains(r#""nextToken":"b/4""#), "{paged_calls:?}");
    }

    /// The read stops once the byte budget is met, token or not, and says the text was cut.
    #[tokio::test]
    async fn the_read_stops_at_the_byte_budget() {
        let pages = vec![page(&[], "b/1"), page(&LINES[2..], "b/2")];
        let budget = LINES[2].len() + LINES[3].len() + 2;
        let (tail, calls) = tail_of(pages, budget).await;
        assert_eq!(calls.len(), 2);
        assert_eq!(tail, LogTail { text: LINES[2..].join("\n") + "\n", truncated: true, found: true });
    }
}
