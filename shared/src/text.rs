//! Bounding untrusted or long text before it goes into a message, a log line or the job row.
//! Every bound is in bytes (what DynamoDB and CloudWatch count) and every cut is on a character
//! boundary, so multi-byte text is never split.

/// How many characters of an untrusted value a message shows.
const PRINTABLE_CHARS: usize = 80;

/// A bounded, log-safe rendering of untrusted text for error messages: at most 80 characters,
/// `…` when cut.
pub fn printable(value: &str) -> String {
    let mut out: String = value.chars().take(PRINTABLE_CHARS).collect();
    if value.chars().nth(PRINTABLE_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// The start of `text` within `max_bytes`: an error message's head names the job and the reason.
pub fn head_bounded(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The last `max_bytes` of `text`, cut at a line start when one is near, else at a character
/// boundary; `true` when something was cut.
pub fn tail_bounded(text: &str, max_bytes: usize) -> (&str, bool) {
    if text.len() <= max_bytes {
        return (text, false);
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = &text[start..];
    // Prefer a whole first line, unless that would throw away half of the tail or more.
    match tail.find('\n') {
        Some(i) if i < tail.len() / 2 => (&tail[i + 1..], true),
        _ => (tail, true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_bounds_characters() {
        let long = "é".repeat(81);
        let cases = [("short", "short".to_string()), (&long[..160], "é".repeat(80)), (&long, format!("{}…", "é".repeat(80)))];
        for (value, expected) in cases {
            assert_eq!(printable(value), expected);
        }
    }

    #[test]
    fn heads_are_bounded_in_bytes_on_character_boundaries() {
        let cases: [(&str, usize, &str); 4] = [("short", 100, "short"), ("abcdef", 3, "abc"), ("ééé", 5, "éé"), ("€x", 2, "")];
        for (text, max, expected) in cases {
            assert_eq!(head_bounded(text, max), expected, "{text:?} {max}");
            assert!(head_bounded(text, max).len() <= max);
        }
    }

    #[test]
    fn tails_are_bounded() {
        let cases: [(&str, usize, &str, bool); 8] = [
            ("short", 100, "short", false),
            ("line one\nline two\nline three\n", 16, "line three\n", true),
            // The tail starts at a line only when that keeps more than half of it.
            ("0123456789abcd\nefghij", 11, "efghij", true),
            ("0123456789abcde\nfghij", 11, "abcde\nfghij", true),
            ("0123456789abcdefgh\nij", 11, "abcdefgh\nij", true),
            ("abcdefghij", 4, "ghij", true),
            ("ééééé", 5, "éé", true),
            ("", 0, "", false),
        ];
        for (text, max, expected, cut) in cases {
            assert_eq!(tail_bounded(text, max), (expected, cut), "{text:?} {max}");
        }
    }
}
