//! DynamoDB stream batches: which sequence number a partial batch failure reports.

use std::cmp::Ordering;

/// Stream sequence numbers are decimal strings of varying length.
pub fn compare_sequence_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The earliest of the failed records' sequence numbers: Lambda retries the shard from there, so
/// reporting a later one would skip the earlier failure.
pub fn earliest_sequence_number<'a>(failed: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    failed.into_iter().min_by(|a, b| compare_sequence_numbers(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_failure_is_numeric_order() {
        let cases: [(&[&str], Option<&str>); 4] = [
            (&["10", "9"], Some("9")),
            (&["400000000000000500002", "400000000000000500001"], Some("400000000000000500001")),
            (&["200"], Some("200")),
            (&[], None),
        ];
        for (failed, expected) in cases {
            assert_eq!(earliest_sequence_number(failed.iter().copied()), expected, "{failed:?}");
        }
    }
}
