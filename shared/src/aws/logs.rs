//! CloudWatch Logs: the end of a job run's driver log streams.

use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::Client;

use super::{classify, AwsError, AwsErrorKind};
use crate::text::tail_bounded;
use crate::outcome::job_run::LogTail;
use crate::ports::LogReader;

const SERVICE: &str = "CloudWatch Logs";
/// Events per GetLogEvents page; a page is also capped at 1 MB by the service.
const PAGE_EVENTS: i32 = 1000;
/// Below this a page was not cut by the service's 1 MB response cap.
const PAGE_BYTES_CAP: usize = 900 * 1024;
/// Pages read backwards at most: bounds the calls for a stream of tiny events.
const MAX_PAGES: usize = 16;

#[derive(Debug, Clone)]
pub struct CloudWatchLogReader {
    client: Client,
}

impl CloudWatchLogReader {
    pub fn new(client: Client) -> Self {
        CloudWatchLogReader { client }
    }
}

#[async_trait]
impl LogReader for CloudWatchLogReader {
    /// Reads pages from the newest event backwards until `max_bytes` are covered, so memory is
    /// bounded by about one page plus `max_bytes` whatever the stream's size.
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize) -> Result<LogTail, AwsError> {
        let mut pages_newest_first: Vec<String> = Vec::new();
        let mut bytes = 0usize;
        let mut token: Option<String> = None;
        let mut more_before = false;
        for _ in 0..MAX_PAGES {
            let result = self
                .client
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(false)
                .limit(PAGE_EVENTS)
                .set_next_token(token.clone())
                .send()
                .await;
            let page = match result {
                Ok(page) => page,
                Err(e) => match classify(SERVICE, "GetLogEvents", e) {
                    err if err.is(AwsErrorKind::NotFound) => return Ok(LogTail::default()),
                    err => return Err(err),
                },
            };
            if page.events().is_empty() {
                more_before = false;
                break;
            }
            let mut text = String::new();
            for event in page.events() {
                let message = event.message().unwrap_or_default();
                text.push_str(message);
                if !message.ends_with('\n') {
                    text.push('\n');
                }
            }
            // A page that is neither full nor cut by the service's 1 MB cap was the oldest one:
            // asking for the page before it would only return nothing.
            let last_page = page.events().len() < PAGE_EVENTS as usize && text.len() < PAGE_BYTES_CAP;
            bytes += text.len();
            pages_newest_first.push(text);
            let next = page.next_backward_token().map(str::to_string);
            let exhausted = last_page || next.is_none() || next == token;
            if bytes >= max_bytes || exhausted {
                more_before = !exhausted;
                break;
            }
            more_before = true;
            token = next;
        }
        let whole: String = pages_newest_first.into_iter().rev().collect();
        let (tail, cut) = tail_bounded(&whole, max_bytes);
        Ok(LogTail { text: tail.to_string(), truncated: cut || more_before, found: true })
    }
}
