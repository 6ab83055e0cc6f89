//! DynamoDB's item size limit as it bears on a job row: how big a row is, the room this service
//! keeps on it for a job's progress, and how much of a write goes on a row near the limit.
//!
//! The limit is 400 KB per item, attribute names and values together (DynamoDB Developer Guide,
//! "Service, account, and table quotas in Amazon DynamoDB" and "Item sizes and formats"). ModelOp
//! puts `FILE` assets' base64 content and inline sources on the job, so a row can come close to it.
//! DynamoDB refuses a write that would pass it with a `ValidationException` ("Item size has exceeded
//! the maximum allowed size" on PutItem, "Item size to update has exceeded the maximum allowed size"
//! on UpdateItem), classified once as `AwsErrorKind::ItemTooLarge` (`crate::aws`): never retried as
//! it is, only written smaller ([`WriteDetail`]).

/// DynamoDB's item size limit: 400 KB = 409,600 bytes, attribute names included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The room, in bytes, a job row must leave below [`MAX_ITEM_BYTES`] when submit takes it: what
/// this service writes on the row over the job's life at its smallest (the claim and its lease,
/// the run id, application and staging URI, each status with its `statusHistory` entry, and a
/// final report shortened to one line of reason, the `failure` and its times: about 4 KB), with a
/// margin for the estimate. A row that leaves less ends in ERROR before anything is staged.
pub const SERVICE_ROOM_BYTES: usize = 8 * 1024;

/// The size DynamoDB counts for an item (Developer Guide, "Item sizes and formats"): each
/// attribute's name and value; strings and binaries by their bytes, numbers by about one byte per
/// two digits plus one, lists and maps 3 bytes plus their elements (and a map's keys) plus one byte
/// each. An estimate on the safe side, exact enough for the 400 KB limit.
pub fn item_size(item: &serde_dynamo::Item) -> usize {
    let map: &std::collections::HashMap<String, serde_dynamo::AttributeValue> = item.as_ref();
    map.iter().map(|(name, value)| name.len() + value_size(value)).sum()
}

/// [`item_size`] of a row held as JSON (an object of attributes); `None` when it is not one.
pub fn json_item_size(row: &serde_json::Value) -> Option<usize> {
    serde_dynamo::to_item::<_, serde_dynamo::Item>(row).ok().map(|item| item_size(&item))
}

fn value_size(value: &serde_dynamo::AttributeValue) -> usize {
    use serde_dynamo::AttributeValue as A;
    match value {
        A::S(s) => s.len(),
        A::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        A::B(b) => b.len(),
        A::Bool(_) | A::Null(_) => 1,
        A::Ss(items) => items.iter().map(String::len).sum(),
        A::Ns(items) => items.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        A::Bs(items) => items.iter().map(Vec::len).sum(),
        A::L(items) => 3 + items.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        A::M(fields) => 3 + fields.iter().map(|(k, v)| 1 + k.len() + value_size(v)).sum::<usize>(),
    }
}

/// A job row that cannot also hold what this service writes on it. Its `Display` is the reason
/// written to the job (after `job <id>: validate job: `).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the job row is {row_bytes} bytes as a DynamoDB item and this service needs {room} more for the job's progress, \
     but DynamoDB holds at most {limit} bytes (400 KB) per item: give large assets as fileUrl instead of inline \
     sourceCode or fileContent"
)]
pub struct RowTooLarge {
    pub row_bytes: usize,
    pub room: usize,
    pub limit: usize,
}

/// Whether a row of `row_bytes` leaves [`SERVICE_ROOM_BYTES`] below the limit.
pub fn check_room(row_bytes: usize) -> Result<(), RowTooLarge> {
    if row_bytes + SERVICE_ROOM_BYTES > MAX_ITEM_BYTES {
        return Err(RowTooLarge { row_bytes, room: SERVICE_ROOM_BYTES, limit: MAX_ITEM_BYTES });
    }
    Ok(())
}

/// How much of a write goes on a row: everything; the long fields shortened; or only what must be
/// recorded. A write DynamoDB refuses for its size is tried again one level down ([`Self::smaller`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WriteDetail {
    Full,
    Short,
    Core,
}

impl WriteDetail {
    /// The next smaller level; `None` after [`WriteDetail::Core`].
    pub fn smaller(self) -> Option<WriteDetail> {
        match self {
            WriteDetail::Full => Some(WriteDetail::Short),
            WriteDetail::Short => Some(WriteDetail::Core),
            WriteDetail::Core => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn item_sizes_follow_dynamodbs_rules() {
        let size = |doc: serde_json::Value| json_item_size(&doc).unwrap();
        let cases = [
            (json!({"id": "abc"}), 5),
            (json!({"n": 12345}), 1 + 3 + 1),
            (json!({"b": true, "z": null}), 4),
            (json!({"l": ["ab", "c"]}), 1 + 3 + 3 + 2),
            (json!({"m": {"k": "v"}}), 1 + 3 + 1 + 1 + 1),
        ];
        for (doc, expected) in cases {
            assert_eq!(size(doc.clone()), expected, "{doc}");
        }
        let just_under = json!({"id": "j", "s": "x".repeat(MAX_ITEM_BYTES - 4)});
        assert_eq!(size(just_under), MAX_ITEM_BYTES);
        assert_eq!(json_item_size(&json!(["not", "an", "object"])), None);
    }

    #[test]
    fn a_row_must_leave_the_service_its_room() {
        assert_eq!(check_room(MAX_ITEM_BYTES - SERVICE_ROOM_BYTES), Ok(()));
        let err = check_room(MAX_ITEM_BYTES - SERVICE_ROOM_BYTES + 1).unwrap_err();
        assert_eq!(err.row_bytes, 401_409);
        let text = err.to_string();
        assert!(text.contains("401409 bytes") && text.contains("at most 409600 bytes (400 KB)") && text.contains("8192 more"), "{text}");
    }

    #[test]
    fn writes_get_smaller_down_to_the_core() {
        let levels: Vec<_> = std::iter::successors(Some(WriteDetail::Full), |d| d.smaller()).collect();
        assert_eq!(levels, [WriteDetail::Full, WriteDetail::Short, WriteDetail::Core]);
    }
}
