//! `s3://bucket/key` URLs, as ModelOp assets carry them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Uri {
    pub bucket: String,
    pub key: String,
}

impl S3Uri {
    /// Parses `s3://bucket/key`; the bucket must be non-empty and free of whitespace, the key may
    /// be empty (a bucket root) but a `None` is returned for any other scheme.
    pub fn parse(url: &str) -> Option<S3Uri> {
        let rest = url.strip_prefix("s3://")?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = !bucket.is_empty()
            && bucket.len() <= 63
            && bucket.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        let key_ok = !key.chars().any(char::is_control);
        (bucket_ok && key_ok).then(|| S3Uri { bucket: bucket.to_string(), key: key.to_string() })
    }
}

impl fmt::Display for S3Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_s3_urls_only() {
        let ok = |b: &str, k: &str| Some(S3Uri { bucket: b.into(), key: k.into() });
        let cases = [
            ("s3://bucket/a/b.csv", ok("bucket", "a/b.csv")),
            ("s3://my_bucket/my_pyspark_venv.tar.gz", ok("my_bucket", "my_pyspark_venv.tar.gz")),
            ("s3://bucket", ok("bucket", "")),
            ("s3://bucket/dir/", ok("bucket", "dir/")),
            ("s3:///key", None),
            ("s3://bu cket/key", None),
            ("s3://bucket/key\n", None),
            ("https://bucket.s3.amazonaws.com/key", None),
            ("S3://bucket/key", None),
        ];
        for (url, expected) in cases {
            assert_eq!(S3Uri::parse(url), expected, "{url}");
        }
        assert_eq!(S3Uri::parse("s3://b/k/x").unwrap().to_string(), "s3://b/k/x");
    }
}
