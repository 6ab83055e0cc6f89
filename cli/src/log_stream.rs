//! Reading one driver log stream forward from CloudWatch Logs, page by page (the shared adapter's
//! GetLogEvents from the head, following `nextForwardToken`), within the service's quotas: a
//! throttled read waits and doubles its wait (up to [`MAX_BACKOFF`]) instead of asking again at
//! once. Monitor reads a stream's end backwards; the CLI follows one.

use std::time::Duration;

use shared::aws::logs::{CloudWatchLogReader, ForwardPage};
use shared::aws::{AwsError, AwsErrorKind};

/// The first wait after a throttled or failed read.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between reads of a throttled stream.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Transient failures in a row before the read gives up.
const MAX_TRANSIENT_FAILURES: u32 = 8;

/// A position in one log stream.
#[derive(Debug, Clone)]
pub struct LogStream {
    pub group: String,
    pub stream: String,
    /// Only events at or after this instant (epoch milliseconds).
    pub start_time: Option<i64>,
    token: Option<String>,
}

/// What one read found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The new events' messages (possibly none: nothing new yet).
    Events(Vec<String>),
    /// The stream does not exist (yet, or any more).
    Missing,
}

impl LogStream {
    /// The stream from its start (or `start_time`).
    pub fn new(group: &str, stream: &str, start_time: Option<i64>) -> LogStream {
        LogStream { group: group.to_string(), stream: stream.to_string(), start_time, token: None }
    }

    /// Every event written since the last read, page after page until the stream's current end.
    pub async fn read_new(&mut self, client: &CloudWatchLogReader) -> Result<Read, AwsError> {
        let mut messages = Vec::new();
        loop {
            let Some(ForwardPage { messages: events, next_forward_token: next }) = self.page(client).await? else {
                return Ok(Read::Missing);
            };
            let at_end = next.is_none() || next == self.token;
            messages.extend(events);
            if next.is_some() {
                self.token = next;
            }
            if at_end {
                return Ok(Read::Events(messages));
            }
        }
    }

    /// One GetLogEvents page, with backoff on throttling; `None` when the stream does not exist.
    async fn page(&self, client: &CloudWatchLogReader) -> Result<Option<ForwardPage>, AwsError> {
        let mut wait = FIRST_BACKOFF;
        let mut failures = 0;
        loop {
            match client.forward_page(&self.group, &self.stream, self.start_time, self.token.as_deref()).await {
                Ok(page) => return Ok(page),
                Err(e) if e.is(AwsErrorKind::Transient) && failures < MAX_TRANSIENT_FAILURES => {
                    failures += 1;
                    tokio::time::sleep(wait).await;
                    wait = next_backoff(wait);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// The wait after `wait`: doubled, at most [`MAX_BACKOFF`].
pub fn next_backoff(wait: Duration) -> Duration {
    (wait * 2).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let mut wait = FIRST_BACKOFF;
        let mut waits = Vec::new();
        for _ in 0..7 {
            waits.push(wait.as_secs());
            wait = next_backoff(wait);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
    }
}
