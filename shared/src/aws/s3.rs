//! S3: staging a job's files, reading model sources, and emptying job folders.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};

use super::{classify, AwsError, AwsErrorKind};
use crate::ports::{FailedDelete, ListedObject, ObjectStore};
use crate::s3_uri::S3Uri;

const SERVICE: &str = "S3";
/// DeleteObjects takes at most this many keys.
pub const DELETE_BATCH: usize = 1000;

#[derive(Debug, Clone)]
pub struct S3ObjectStore {
    client: Client,
}

impl S3ObjectStore {
    pub fn new(client: Client) -> Self {
        S3ObjectStore { client }
    }
}

/// CopyObject's `x-amz-copy-source`: `bucket/key` with the key URL-encoded except for '/'.
fn copy_source(from: &S3Uri) -> String {
    let mut encoded = String::with_capacity(from.key.len());
    for byte in from.key.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => encoded.push(byte as char),
            other => encoded.push_str(&format!("%{other:02X}")),
        }
    }
    format!("{}/{}", from.bucket, encoded)
}

#[async_trait]
impl ObjectStore for S3ObjectStore {
    async fn put_text(&self, bucket: &str, key: &str, body: String, content_type: &str) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(SERVICE, "PutObject", e))
    }

    async fn copy(&self, from: &S3Uri, bucket: &str, key: &str) -> Result<(), AwsError> {
        self.client
            .copy_object()
            .copy_source(copy_source(from))
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(SERVICE, "CopyObject", e))
    }

    async fn get_text(&self, from: &S3Uri, max_bytes: u64) -> Result<String, AwsError> {
        let output = self
            .client
            .get_object()
            .bucket(&from.bucket)
            .key(&from.key)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetObject", e))?;
        let too_big = |size: u64| AwsError::new(SERVICE, "GetObject", AwsErrorKind::Permanent, format!("{from} is {size} bytes; at most {max_bytes} are read"));
        if let Some(length) = output.content_length().filter(|l| *l as u64 > max_bytes) {
            return Err(too_big(length as u64));
        }
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| AwsError::new(SERVICE, "GetObject", AwsErrorKind::Transient, format!("{from}: reading the body failed: {e}")))?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Err(too_big(bytes.len() as u64));
        }
        String::from_utf8(bytes.to_vec())
            .map_err(|_| AwsError::new(SERVICE, "GetObject", AwsErrorKind::Permanent, format!("{from} is not UTF-8 text")))
    }

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<(), AwsError> {
        for chunk in keys.chunks(DELETE_BATCH) {
            let failed = self.delete_batch(bucket, chunk).await?;
            if let Some(first) = failed.first() {
                return Err(AwsError::new(
                    SERVICE,
                    "DeleteObjects",
                    AwsErrorKind::Transient,
                    format!("{} of {} keys not deleted, first {:?}: {}", failed.len(), chunk.len(), first.key, first.message),
                ));
            }
        }
        Ok(())
    }

    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, AwsError> {
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "ListObjectsV2", e))?;
            objects.extend(page.contents().iter().filter_map(|o| {
                let last_modified = o.last_modified().and_then(|t| DateTime::<Utc>::from_timestamp_millis(t.to_millis().ok()?));
                o.key().map(|key| ListedObject { key: key.to_string(), last_modified })
            }));
        }
        Ok(objects)
    }

    async fn list_folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).delimiter("/").into_paginator().send();
        let mut folders = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "ListObjectsV2", e))?;
            folders.extend(page.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_string));
        }
        Ok(folders)
    }

    async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, AwsError> {
        match self.client.head_object().bucket(bucket).key(key).send().await {
            Ok(output) => Ok(Some(output.content_length().unwrap_or(0).max(0) as u64)),
            Err(e) => match classify(SERVICE, "HeadObject", e) {
                err if err.is(AwsErrorKind::NotFound) => Ok(None),
                err => Err(err),
            },
        }
    }

    async fn has_objects(&self, bucket: &str, prefix: &str) -> Result<bool, AwsError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "ListObjectsV2", e))?;
        Ok(!output.contents().is_empty())
    }

    async fn delete_keys_reporting(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        let mut failed = Vec::new();
        for chunk in keys.chunks(DELETE_BATCH) {
            failed.extend(self.delete_batch(bucket, chunk).await?);
        }
        Ok(failed)
    }
}

impl S3ObjectStore {
    /// One DeleteObjects call (at most [`DELETE_BATCH`] keys), in quiet mode so the response lists
    /// only the keys that were not deleted.
    async fn delete_batch(&self, bucket: &str, chunk: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        let invalid = |e: aws_sdk_s3::error::BuildError| AwsError::new(SERVICE, "DeleteObjects", AwsErrorKind::Permanent, format!("request could not be built: {e}"));
        let objects = chunk.iter().map(|k| ObjectIdentifier::builder().key(k).build()).collect::<Result<Vec<_>, _>>().map_err(invalid)?;
        let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(invalid)?;
        let output = self
            .client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DeleteObjects", e))?;
        Ok(output
            .errors()
            .iter()
            .map(|e| FailedDelete {
                key: e.key().unwrap_or_default().to_string(),
                code: e.code().unwrap_or_default().to_string(),
                message: e.message().unwrap_or_default().to_string(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_encodes_the_key() {
        let cases = [
            ("s3://models/m/v1/model.py", "models/m/v1/model.py"),
            ("s3://models/a b/c+d.py", "models/a%20b/c%2Bd.py"),
            ("s3://models/é.py", "models/%C3%A9.py"),
        ];
        for (uri, expected) in cases {
            assert_eq!(copy_source(&S3Uri::parse(uri).unwrap()), expected);
        }
    }
}
