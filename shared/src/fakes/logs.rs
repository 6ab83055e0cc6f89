//! CloudWatch Logs: driver log streams behind the log reader port.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::error::AwsError;
use crate::outcome::job_run::LogTail;
use crate::ports::*;
use super::recorder::Recorder;

/// CloudWatch Logs: streams' text by (group, stream).
#[derive(Default)]
pub struct FakeLogs {
    pub recorder: Recorder,
    streams: Mutex<BTreeMap<(String, String), String>>,
}

impl FakeLogs {
    pub fn put(&self, group: &str, stream: &str, text: &str) {
        self.streams.lock().unwrap().insert((group.into(), stream.into()), text.into());
    }
}

#[async_trait]
impl LogReader for FakeLogs {
    async fn tail(&self, group: &str, stream: &str, max_bytes: usize) -> Result<LogTail, AwsError> {
        self.recorder.call("tail", &[group, stream])?;
        let streams = self.streams.lock().unwrap();
        let Some(text) = streams.get(&(group.to_string(), stream.to_string())) else {
            return Ok(LogTail::default());
        };
        let (tail, truncated) = crate::text::tail_bounded(text, max_bytes);
        Ok(LogTail { text: tail.to_string(), truncated, found: true })
    }
}
