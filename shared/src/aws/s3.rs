//! S3: staging a job's files, reading model sources, and emptying job folders.

use std::borrow::Cow;

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, Object, ObjectIdentifier};
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::{classify, AwsError, AwsErrorKind};
use crate::ports::{RunOutputReader, StagingFolders, StagingWriter};
use crate::launch::staging_folder::{FailedDelete, ListedObject, ListedPage};
use crate::job::s3_uri::S3Uri;

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

    /// GetObject's body, refused up front when the object says it is larger than `max_bytes`
    /// (callers still count while reading: the length header is not a promise).
    async fn open_bounded(&self, from: &S3Uri, max_bytes: u64) -> Result<ByteStream, AwsError> {
        let output = self
            .client
            .get_object()
            .bucket(&from.bucket)
            .key(&from.key)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetObject", e))?;
        match output.content_length() {
            Some(length) if length as u64 > max_bytes => Err(too_big(from, length as u64, max_bytes)),
            _ => Ok(output.body),
        }
    }
}

/// `Ok(true)` for a conditional write that created the object, `Ok(false)` when one existed.
fn created_unless_exists<T>(result: Result<T, AwsError>) -> Result<bool, AwsError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is(AwsErrorKind::ConditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A listed object with a key; its `LastModified` in milliseconds.
fn listed_object(object: &Object) -> Option<ListedObject> {
    let last_modified = object.last_modified().and_then(|t| DateTime::<Utc>::from_timestamp_millis(t.to_millis().ok()?));
    object.key().map(|key| ListedObject { key: key.to_string(), last_modified })
}

fn too_big(from: &S3Uri, size: u64, max_bytes: u64) -> AwsError {
    AwsError::new(SERVICE, "GetObject", AwsErrorKind::Permanent, format!("{from} is {size} bytes; at most {max_bytes} are read"))
}

/// What `copy_source` leaves as it is in a key: RFC 3986's unreserved characters, and '/' so the
/// key keeps its path shape.
const COPY_SOURCE_KEEP: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// CopyObject's `x-amz-copy-source`: `bucket/key` with the key URL-encoded except for '/'.
fn copy_source(from: &S3Uri) -> String {
    format!("{}/{}", from.bucket, utf8_percent_encode(&from.key, COPY_SOURCE_KEEP))
}

#[async_trait]
impl StagingWriter for S3ObjectStore {
    async fn put_new(&self, bucket: &str, key: &str, body: Cow<'static, [u8]>, content_type: &str) -> Result<bool, AwsError> {
        let result = self
            .client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .if_none_match("*")
            .body(match body {
                Cow::Borrowed(bytes) => ByteStream::from_static(bytes),
                Cow::Owned(bytes) => ByteStream::from(bytes),
            })
            .send()
            .await
            .map_err(|e| classify(SERVICE, "PutObject", e));
        created_unless_exists(result)
    }

    async fn copy_new(&self, from: &S3Uri, bucket: &str, key: &str) -> Result<bool, AwsError> {
        let result = self
            .client
            .copy_object()
            .copy_source(copy_source(from))
            .bucket(bucket)
            .key(key)
            .if_none_match("*")
            .send()
            .await
            .map_err(|e| classify(SERVICE, "CopyObject", e));
        created_unless_exists(result)
    }

    async fn for_each_line(&self, from: &S3Uri, max_bytes: u64, on_line: &mut (dyn for<'l> FnMut(&'l str) + Send)) -> Result<(), AwsError> {
        let mut body = self.open_bounded(from, max_bytes).await?;
        let mut lines = LineSplitter::default();
        let mut read = 0u64;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| AwsError::new(SERVICE, "GetObject", AwsErrorKind::Transient, format!("{from}: reading the body failed: {e}")))?
        {
            read += chunk.len() as u64;
            if read > max_bytes {
                return Err(too_big(from, read, max_bytes));
            }
            lines.push(&chunk, on_line);
        }
        lines.finish(on_line);
        Ok(())
    }

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.delete_all(bucket, keys).await
    }
}

#[async_trait]
impl RunOutputReader for S3ObjectStore {
    async fn get_text(&self, from: &S3Uri, max_bytes: u64) -> Result<String, AwsError> {
        String::from_utf8(self.get_bytes(from, max_bytes).await?)
            .map_err(|_| AwsError::new(SERVICE, "GetObject", AwsErrorKind::Permanent, format!("{from} is not UTF-8 text")))
    }

    async fn get_bytes(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError> {
        let bytes = self
            .open_bounded(from, max_bytes)
            .await?
            .collect()
            .await
            .map_err(|e| AwsError::new(SERVICE, "GetObject", AwsErrorKind::Transient, format!("{from}: reading the body failed: {e}")))?
            .into_bytes();
        if bytes.len() as u64 > max_bytes {
            return Err(too_big(from, bytes.len() as u64, max_bytes));
        }
        Ok(bytes.to_vec())
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
}

#[async_trait]
impl StagingFolders for S3ObjectStore {
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, AwsError> {
        let mut pages = self.client.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify(SERVICE, "ListObjectsV2", e))?;
            objects.extend(page.contents().iter().filter_map(listed_object));
        }
        Ok(objects)
    }

    async fn list_page(&self, bucket: &str, prefix: &str, continuation: Option<&str>) -> Result<ListedPage, AwsError> {
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(continuation.map(str::to_string))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "ListObjectsV2", e))?;
        // The listing ends as the SDK's paginator ends it (what `list_keys` follows): at no token,
        // an empty one, or the token just used, which would lead back to the same page.
        let next = output.next_continuation_token().filter(|token| !token.is_empty() && Some(*token) != continuation);
        Ok(ListedPage { objects: output.contents().iter().filter_map(listed_object).collect(), next: next.map(str::to_string) })
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

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.delete_all(bucket, keys).await
    }
}

/// The calls only the operator CLI's `submit --local` makes, to put a job document's local files in
/// the local stack's S3.
impl S3ObjectStore {
    /// CreateBucket; a bucket that exists already (ours, or anyone's) is left as it is.
    pub async fn ensure_bucket(&self, bucket: &str) -> Result<(), AwsError> {
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()) => Ok(()),
            Err(e) => Err(classify(SERVICE, "CreateBucket", e)),
        }
    }

    /// PutObject of `body`, over any object at `key`.
    pub async fn put_object(&self, bucket: &str, key: &str, body: Vec<u8>) -> Result<(), AwsError> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| classify(SERVICE, "PutObject", e))
    }
}

impl S3ObjectStore {
    /// Deletes the keys in DeleteObjects batches; the keys S3 reported as not deleted.
    async fn delete_all(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        let mut failed = Vec::new();
        for chunk in keys.chunks(DELETE_BATCH) {
            failed.extend(self.delete_batch(bucket, chunk).await?);
        }
        Ok(failed)
    }

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

/// Cuts a byte stream into lines across chunk boundaries. A line longer than `MAX_LINE` keeps
/// only its start: enough for what a line is scanned for, and memory stays bounded.
#[derive(Default)]
struct LineSplitter {
    carry: Vec<u8>,
}

const MAX_LINE: usize = 64 * 1024;

impl LineSplitter {
    fn push<F: FnMut(&str) + ?Sized>(&mut self, mut chunk: &[u8], on_line: &mut F) {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            self.append(&chunk[..end]);
            on_line(&String::from_utf8_lossy(self.carry.strip_suffix(b"\r").unwrap_or(&self.carry)));
            self.carry.clear();
            chunk = &chunk[end + 1..];
        }
        self.append(chunk);
    }

    fn append(&mut self, bytes: &[u8]) {
        let room = MAX_LINE.saturating_sub(self.carry.len());
        self.carry.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn finish<F: FnMut(&str) + ?Sized>(self, on_line: &mut F) {
        if !self.carry.is_empty() {
            on_line(&String::from_utf8_lossy(&self.carry));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_whole_across_chunks() {
        let cases: [(&[&str], &[&str]); 4] = [
            (&["# modelop.sc", "ore\ndef act", "ion(a, b, c):\n"], &["# modelop.score", "def action(a, b, c):"]),
            (&["a\r\nb", "", "\n\nc"], &["a", "b", "", "c"]),
            (&["no newline at end"], &["no newline at end"]),
            (&["\u{e9}t\u{e9}\n"], &["\u{e9}t\u{e9}"]),
        ];
        for (chunks, expected) in cases {
            let mut lines = Vec::new();
            let mut collect = |line: &str| lines.push(line.to_string());
            let mut splitter = LineSplitter::default();
            for chunk in chunks {
                splitter.push(chunk.as_bytes(), &mut collect);
            }
            splitter.finish(&mut collect);
            assert_eq!(lines, expected, "{chunks:?}");
        }
        let mut longest = 0;
        let mut measure = |line: &str| longest = longest.max(line.len());
        let mut splitter = LineSplitter::default();
        splitter.push(&vec![b'x'; 3 * MAX_LINE], &mut measure);
        splitter.finish(&mut measure);
        assert_eq!(longest, MAX_LINE);
    }

    fn store_answering(http: &super::super::canned_http::CannedHttp) -> S3ObjectStore {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(super::super::canned_http::CannedHttp::credentials())
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .http_client(http.client())
            .build();
        S3ObjectStore::new(Client::from_conf(config))
    }

    fn s3_error(status: u16, code: &str) -> (u16, Vec<(&'static str, &'static str)>, String) {
        let body = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>m</Message><RequestId>r</RequestId></Error>");
        (status, vec![("content-type", "application/xml")], body)
    }

    /// The PutObject and CopyObject references: "If a conflicting operation occurs during the upload S3 returns a
    /// 409 ConditionalRequestConflict response. On a 409 failure you should retry the upload." A conditional staging
    /// write that lost such a race is retried (transient), not taken as "the object exists" nor as a failure.
    #[tokio::test]
    async fn a_conditional_write_that_met_a_conflicting_operation_is_transient() {
        let http = super::super::canned_http::CannedHttp::new([s3_error(409, "ConditionalRequestConflict"), s3_error(409, "ConditionalRequestConflict")]);
        let store = store_answering(&http);
        let put = store.put_new("staging", "jobs/j1/driver.py", Cow::Borrowed(b"print(1)"), "text/x-python").await.unwrap_err();
        assert_eq!((put.kind, put.code.as_deref()), (AwsErrorKind::Transient, Some("ConditionalRequestConflict")), "{put}");
        let copy = store.copy_new(&S3Uri::parse("s3://models/m.py").unwrap(), "staging", "jobs/j1/m.py").await.unwrap_err();
        assert_eq!((copy.kind, copy.code.as_deref()), (AwsErrorKind::Transient, Some("ConditionalRequestConflict")), "{copy}");
        // The object that exists is still "not created", and no error.
        let http = super::super::canned_http::CannedHttp::new([s3_error(412, "PreconditionFailed")]);
        assert!(!store_answering(&http).put_new("staging", "k", Cow::Borrowed(b"x"), "text/plain").await.unwrap());
    }

    #[test]
    fn copy_source_encodes_the_key() {
        let cases = [
            ("s3://models/m/v1/model.py", "models/m/v1/model.py"),
            ("s3://models/a b/c+d.py", "models/a%20b/c%2Bd.py"),
            ("s3://models/é.py", "models/%C3%A9.py"),
            ("s3://models/v~1_2-3.4/100%?#&=.py", "models/v~1_2-3.4/100%25%3F%23%26%3D.py"),
        ];
        for (uri, expected) in cases {
            assert_eq!(copy_source(&S3Uri::parse(uri).unwrap()), expected);
        }
    }
}
