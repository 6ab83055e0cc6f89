//! CloudWatch Logs: driver log streams behind the log reader port.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;
use crate::outcome::job_run::{LogReadPatience, LogTail};
use crate::ports::*;
use super::recorder::{transient, Recorder};

/// CloudWatch Logs: streams' text by (group, stream). While [`FakeLogs::throttle`] is on, every
/// read fails as a throttled one does after its retries; while [`FakeLogs::stall`] is on, reads
/// never answer.
#[derive(Default)]
pub struct FakeLogs {
    pub recorder: Recorder,
    streams: Mutex<BTreeMap<(String, String), String>>,
    throttled: AtomicBool,
    stalled: AtomicBool,
}

impl FakeLogs {
    pub fn put(&self, group: &str, stream: &str, text: &str) {
        self.streams.lock().unwrap().insert((group.into(), stream.into()), text.into());
    }

    /// The account's GetLogEvents quota is used up (on) or free again (off).
    pub fn throttle(&self, on: bool) {
        self.throttled.store(on, Ordering::SeqCst);
    }

    /// Reads hang (on), as a connection that never answers, or answer again (off).
    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }
}

/// The name a call is recorded with: `tail` with [`LogReadPatience::Once`], `tail_paced` with
/// [`LogReadPatience::Paced`].
fn call_name(patience: LogReadPatience) -> &'static str {
    match patience {
        LogReadPatience::Once => "tail",
        LogReadPatience::Paced => "tail_paced",
    }
}

#[async_trait]
impl LogReader for FakeLogs {
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize, patience: LogReadPatience) -> Result<LogTail, AwsError> {
        self.recorder.call(call_name(patience), &[group, stream])?;
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.throttled.load(Ordering::SeqCst) {
            return Err(transient("GetLogEvents"));
        }
        let streams = self.streams.lock().unwrap();
        let Some(text) = streams.get(&(group.to_string(), stream.to_string())) else {
            return Ok(LogTail::default());
        };
        let (tail, truncated) = crate::text::tail_bounded(text, max_bytes);
        Ok(LogTail { text: tail.to_string(), truncated, found: true })
    }
}
