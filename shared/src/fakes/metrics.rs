//! The metric entries a test emits, read back through metrique's own test sink
//! (`metrique_writer::test_util`): what the dashboards and alarms in `infra/` would be given.

use metrique_writer::core::global::ThreadLocalTestSinkGuard;
use metrique_writer::test_util::{test_entry_sink, Inspector, TestEntry, TestEntrySink};

/// Every entry [`crate::metrics`] emits on this thread while it lives goes to it rather than to
/// stdout. One at a time per thread (metrique panics on a second); a `#[tokio::test]` runs on its
/// own thread, so tests do not see each other's entries.
pub struct EmittedMetrics {
    inspector: Inspector,
    _sink: ThreadLocalTestSinkGuard,
}

impl EmittedMetrics {
    /// Starts capturing this thread's entries.
    pub fn capture() -> Self {
        let TestEntrySink { inspector, sink } = test_entry_sink();
        EmittedMetrics { _sink: metrique::ServiceMetrics::set_test_sink(sink), inspector }
    }

    /// Every entry so far, oldest first: `metrics` by metric name (`as_u64()`), `values` by
    /// dimension or property name.
    pub fn entries(&self) -> Vec<TestEntry> {
        self.inspector.entries()
    }

    /// The entries that carry `metric` (a metric name such as `RowsTooLarge`), oldest first.
    pub fn with_metric(&self, metric: &str) -> Vec<TestEntry> {
        self.entries().into_iter().filter(|e| e.metrics.contains_key(metric)).collect()
    }
}
