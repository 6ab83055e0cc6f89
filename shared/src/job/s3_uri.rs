//! S3 locations: `s3://bucket/key`, and the other forms ModelOp assets carry, normalised to it.

use std::fmt;

use percent_encoding::percent_decode_str;

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

/// Why an asset's `fileUrl` is not an S3 location this service can hand to Spark.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetUrlError {
    #[error("it is not a URL of a form this service reads (s3://, s3a://, s3n://, an AWS S3 https URL, or http(s)://host/bucket/key with repositoryInfo.repositoryType S3_REPOSITORY)")]
    UnknownForm,
    #[error("it names no bucket, or a bucket name S3 does not allow")]
    BadBucket,
    #[error("it carries a query string (a presigned or versioned URL), which Spark cannot read")]
    Query,
}

impl S3Uri {
    /// The S3 location an asset's `fileUrl` names, in any of the forms ModelOp and AWS write it:
    ///
    /// | form | example |
    /// |---|---|
    /// | `s3://`, `s3a://`, `s3n://` | `s3a://bucket/key` |
    /// | AWS virtual-hosted | `https://bucket.s3.us-east-1.amazonaws.com/key`, `https://bucket.s3.amazonaws.com/key` |
    /// | AWS path-style | `https://s3.us-east-1.amazonaws.com/bucket/key`, `https://s3-us-west-2.amazonaws.com/bucket/key` |
    /// | ModelOp S3 repository (`s3_repository`) | `http://minio:9000/bucket/key` (`full_drift_job.json`) |
    ///
    /// The key of an http(s) URL is percent-decoded; `s3*://` keys are taken as written. Any other
    /// form (`hdfs://`, a local path, an http URL outside an S3 repository) is an error.
    pub fn from_asset_url(url: &str, s3_repository: bool) -> Result<S3Uri, AssetUrlError> {
        for scheme in ["s3://", "s3a://", "s3n://"] {
            if let Some(rest) = url.strip_prefix(scheme) {
                return S3Uri::parse(&format!("s3://{rest}")).ok_or(AssetUrlError::BadBucket);
            }
        }
        let parsed = url::Url::parse(url).map_err(|_| AssetUrlError::UnknownForm)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(AssetUrlError::UnknownForm);
        }
        if parsed.query().is_some() {
            return Err(AssetUrlError::Query);
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let path = parsed.path().strip_prefix('/').unwrap_or(parsed.path());
        let (bucket, key) = match aws_s3_host(&host) {
            Some(AwsS3Host::VirtualHosted(bucket)) => (bucket.to_string(), path),
            Some(AwsS3Host::PathStyle) => split_bucket(path),
            None if s3_repository => split_bucket(path),
            None => return Err(AssetUrlError::UnknownForm),
        };
        let key = percent_decode_str(key).decode_utf8().map_err(|_| AssetUrlError::UnknownForm)?;
        S3Uri::parse(&format!("s3://{bucket}/{key}")).filter(|u| !u.bucket.is_empty()).ok_or(AssetUrlError::BadBucket)
    }
}

/// A URL fit for an error message: no user info, query or fragment (where credentials and
/// signatures live), bounded.
pub fn redacted_url(url: &str) -> String {
    let shown = match url::Url::parse(url) {
        Ok(mut parsed) if parsed.has_host() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.set_query(None);
            parsed.set_fragment(None);
            parsed.to_string()
        }
        _ => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    };
    crate::text::printable(&shown)
}

enum AwsS3Host<'h> {
    VirtualHosted(&'h str),
    PathStyle,
}

/// Recognises AWS's S3 endpoints (`s3.amazonaws.com`, `s3.<region>.amazonaws.com`,
/// `s3-<region>.amazonaws.com`, dual-stack, and the `.amazonaws.com.cn` partition), with or
/// without a bucket in front.
fn aws_s3_host(host: &str) -> Option<AwsS3Host<'_>> {
    let rest = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let labels: Vec<&str> = rest.split('.').collect();
    let s3_at = labels.iter().rposition(|l| *l == "s3" || l.starts_with("s3-"))?;
    let tail_ok = labels[s3_at + 1..].iter().all(|l| !l.is_empty());
    if !tail_ok || labels.len() - s3_at > 3 {
        return None;
    }
    match s3_at {
        0 => Some(AwsS3Host::PathStyle),
        _ => Some(AwsS3Host::VirtualHosted(&host[..labels[..s3_at].join(".").len()])),
    }
}

fn split_bucket(path: &str) -> (String, &str) {
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    (percent_decode_str(bucket).decode_utf8_lossy().into_owned(), key)
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

    #[test]
    fn asset_urls_in_modelop_and_aws_forms_normalise_to_s3() {
        let ok = |u: &str| Ok(S3Uri::parse(u).unwrap());
        let cases: &[(&str, bool, Result<S3Uri, AssetUrlError>)] = &[
            ("s3://bucket/a/b.csv", false, ok("s3://bucket/a/b.csv")),
            ("s3a://bucket/a/b.csv", false, ok("s3://bucket/a/b.csv")),
            ("s3n://bucket/dir/", false, ok("s3://bucket/dir/")),
            ("https://bucket.s3.amazonaws.com/a/b.csv", false, ok("s3://bucket/a/b.csv")),
            ("https://my.bucket.s3.us-east-1.amazonaws.com/a%20b.csv", false, ok("s3://my.bucket/a b.csv")),
            ("https://bucket.s3-us-west-2.amazonaws.com/k", false, ok("s3://bucket/k")),
            ("https://bucket.s3.dualstack.eu-west-1.amazonaws.com/k", false, ok("s3://bucket/k")),
            ("https://s3.eu-west-1.amazonaws.com/bucket/a/b.csv", false, ok("s3://bucket/a/b.csv")),
            ("https://s3.amazonaws.com/bucket/k", false, ok("s3://bucket/k")),
            ("https://s3-us-west-2.amazonaws.com/bucket/k", false, ok("s3://bucket/k")),
            ("https://bucket.s3.cn-north-1.amazonaws.com.cn/k", false, ok("s3://bucket/k")),
            // A bucket whose name starts with `s3-` or is `s3` is a bucket, not the endpoint.
            ("https://s3-data.s3.us-east-1.amazonaws.com/k", false, ok("s3://s3-data/k")),
            ("https://s3-data.s3-us-west-2.amazonaws.com/k", false, ok("s3://s3-data/k")),
            ("https://s3.s3.amazonaws.com/k", false, ok("s3://s3/k")),
            ("https://s3-us-west-2.amazonaws.com/s3-data/k", false, ok("s3://s3-data/k")),
            ("https://a.b.s3.dualstack.eu-west-1.amazonaws.com/k", false, ok("s3://a.b/k")),
            // Not an S3 endpoint: too many labels after `s3`, or an empty one.
            ("https://bucket.s3.x.eu-west-1.y.amazonaws.com/k", false, Err(AssetUrlError::UnknownForm)),
            ("https://bucket.s3..amazonaws.com/k", false, Err(AssetUrlError::UnknownForm)),
            ("https://bucket.s4.amazonaws.com/k", false, Err(AssetUrlError::UnknownForm)),
            ("https://bucket.s3.amazonaws.com.evil.example/k", false, Err(AssetUrlError::UnknownForm)),
            // ModelOp's S3 repository (full_drift_job.json): path-style on any host.
            ("http://minio:9000/modelop/3e2f/e45d.json", true, ok("s3://modelop/3e2f/e45d.json")),
            ("https://ecs.example.com:9020/moc-app-prod/b4cb/x.json", true, ok("s3://moc-app-prod/b4cb/x.json")),
            ("http://minio:9000/modelop/3e2f/e45d.json", false, Err(AssetUrlError::UnknownForm)),
            ("https://example.com/bucket/key", false, Err(AssetUrlError::UnknownForm)),
            ("hdfs:///hadoop/demo/test.csv", true, Err(AssetUrlError::UnknownForm)),
            ("/hadoop/test.csv", true, Err(AssetUrlError::UnknownForm)),
            ("ftp://bucket/key", true, Err(AssetUrlError::UnknownForm)),
            ("https://bucket.s3.amazonaws.com/k?X-Amz-Signature=abc", false, Err(AssetUrlError::Query)),
            ("s3a:///key", false, Err(AssetUrlError::BadBucket)),
            ("http://minio:9000/", true, Err(AssetUrlError::BadBucket)),
        ];
        for (url, s3_repository, expected) in cases {
            assert_eq!(&S3Uri::from_asset_url(url, *s3_repository), expected, "{url}");
        }
    }

    #[test]
    fn redacted_urls_keep_no_credentials_or_signatures() {
        let cases = [
            ("https://AKIAEXAMPLE:s3cr3t@minio:9000/b/k?X-Amz-Signature=sig#f", "https://minio:9000/b/k"),
            ("hdfs:///hadoop/test.csv?token=t", "hdfs:///hadoop/test.csv"),
            ("not a url?secret=1", "not a url"),
        ];
        for (url, expected) in cases {
            let shown = redacted_url(url);
            assert_eq!(shown, expected);
            assert!(!shown.contains("s3cr3t") && !shown.contains("sig") && !shown.contains("secret"));
        }
    }
}
