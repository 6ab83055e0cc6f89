//! The staging bucket: a map of objects behind the S3 ports (staging writes, run outputs, staging
//! folders).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{AwsError, AwsErrorKind};
use crate::ports::*;
use crate::launch::staging_folder::{FailedDelete, ListedObject, ListedPage};
use crate::job::s3_uri::S3Uri;
use super::recorder::{Call, Recorder};

/// One object of the fake bucket map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeObject {
    pub body: Vec<u8>,
    pub last_modified: DateTime<Utc>,
}

/// S3: objects in a map keyed by (bucket, key).
#[derive(Default)]
pub struct FakeObjectStore {
    pub recorder: Recorder,
    objects: Mutex<BTreeMap<(String, String), FakeObject>>,
}

/// The calls that change a bucket.
pub const S3_WRITES: [&str; 3] = ["put_new", "copy_new", "delete_keys"];

impl FakeObjectStore {
    /// Puts an object as it is (no call recorded), written `at`.
    pub fn put_at(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>, at: DateTime<Utc>) {
        self.objects.lock().unwrap().insert((bucket.into(), key.into()), FakeObject { body: body.into(), last_modified: at });
    }

    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.put_at(bucket, key, body, Utc::now());
    }

    pub fn get(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        self.objects.lock().unwrap().get(&(bucket.to_string(), key.to_string())).map(|o| o.body.clone())
    }

    /// Every key of `bucket` under `prefix`, in order.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.objects.lock().unwrap().keys().filter(|(b, k)| b == bucket && k.starts_with(prefix)).map(|(_, k)| k.clone()).collect()
    }

    /// The calls that wrote or deleted objects.
    pub fn writes(&self) -> Vec<Call> {
        self.recorder.calls().into_iter().filter(|c| S3_WRITES.contains(&c.name)).collect()
    }

    pub fn fail_next(&self, operation: &'static str, error: AwsError) {
        self.recorder.fail_next(operation, error);
    }

    fn read(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError> {
        let body = self.get(&from.bucket, &from.key).ok_or_else(|| AwsError::new("S3", "GetObject", AwsErrorKind::NotFound, format!("NoSuchKey: {from}")))?;
        if body.len() as u64 > max_bytes {
            return Err(AwsError::new("S3", "GetObject", AwsErrorKind::Permanent, format!("{from} is {} bytes; at most {max_bytes} are read", body.len())));
        }
        Ok(body)
    }

    /// Writes unless the key exists (`If-None-Match: *`).
    fn create(&self, bucket: &str, key: &str, body: Vec<u8>) -> bool {
        let mut objects = self.objects.lock().unwrap();
        let slot = objects.entry((bucket.to_string(), key.to_string()));
        match slot {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(FakeObject { body, last_modified: Utc::now() });
                true
            }
        }
    }

    /// DeleteObjects: a recorded call that deletes every key and reports none as failed.
    fn delete(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.recorder.call("delete_keys", &[bucket, &keys.join(",")])?;
        let mut objects = self.objects.lock().unwrap();
        for key in keys {
            objects.remove(&(bucket.to_string(), key.clone()));
        }
        Ok(Vec::new())
    }
}

#[async_trait]
impl StagingWriter for FakeObjectStore {
    async fn put_new(&self, bucket: &str, key: &str, body: Cow<'static, [u8]>, _content_type: &str) -> Result<bool, AwsError> {
        self.recorder.call("put_new", &[bucket, key])?;
        Ok(self.create(bucket, key, body.into_owned()))
    }

    async fn copy_new(&self, from: &S3Uri, bucket: &str, key: &str) -> Result<bool, AwsError> {
        self.recorder.call("copy_new", &[&from.to_string(), bucket, key])?;
        let body = self.read(from, u64::MAX)?;
        Ok(self.create(bucket, key, body))
    }

    async fn for_each_line(&self, from: &S3Uri, max_bytes: u64, on_line: &mut (dyn for<'l> FnMut(&'l str) + Send)) -> Result<(), AwsError> {
        self.recorder.call("for_each_line", &[&from.to_string()])?;
        for line in String::from_utf8_lossy(&self.read(from, max_bytes)?).lines() {
            on_line(line);
        }
        Ok(())
    }

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.delete(bucket, keys)
    }
}

#[async_trait]
impl RunOutputReader for FakeObjectStore {
    async fn get_text(&self, from: &S3Uri, max_bytes: u64) -> Result<String, AwsError> {
        self.recorder.call("get_text", &[&from.to_string()])?;
        String::from_utf8(self.read(from, max_bytes)?).map_err(|_| AwsError::new("S3", "GetObject", AwsErrorKind::Permanent, format!("{from} is not UTF-8 text")))
    }

    async fn get_bytes(&self, from: &S3Uri, max_bytes: u64) -> Result<Vec<u8>, AwsError> {
        self.recorder.call("get_bytes", &[&from.to_string()])?;
        self.read(from, max_bytes)
    }

    async fn object_size(&self, bucket: &str, key: &str) -> Result<Option<u64>, AwsError> {
        self.recorder.call("object_size", &[bucket, key])?;
        Ok(self.get(bucket, key).map(|b| b.len() as u64))
    }

    async fn has_objects(&self, bucket: &str, prefix: &str) -> Result<bool, AwsError> {
        self.recorder.call("has_objects", &[bucket, prefix])?;
        Ok(!self.keys(bucket, prefix).is_empty())
    }
}

#[async_trait]
impl StagingFolders for FakeObjectStore {
    async fn list_keys(&self, bucket: &str, prefix: &str) -> Result<Vec<ListedObject>, AwsError> {
        self.recorder.call("list_keys", &[bucket, prefix])?;
        let objects = self.objects.lock().unwrap();
        Ok(objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix))
            .map(|((_, key), o)| ListedObject { key: key.clone(), last_modified: Some(o.last_modified) })
            .collect())
    }

    async fn list_page(&self, bucket: &str, prefix: &str, continuation: Option<&str>) -> Result<ListedPage, AwsError> {
        self.recorder.call("list_page", &[bucket, prefix, continuation.unwrap_or("")])?;
        const PAGE: usize = 1_000;
        let objects = self.objects.lock().unwrap();
        let mut page: Vec<ListedObject> = objects
            .iter()
            .filter(|((b, k), _)| b == bucket && k.starts_with(prefix) && continuation.is_none_or(|after| k.as_str() > after))
            .map(|((_, key), o)| ListedObject { key: key.clone(), last_modified: Some(o.last_modified) })
            .take(PAGE + 1)
            .collect();
        // The token is the page's last key, as ListObjectsV2's StartAfter would take it.
        let next = (page.len() > PAGE).then(|| {
            page.truncate(PAGE);
            page[PAGE - 1].key.clone()
        });
        Ok(ListedPage { objects: page, next })
    }

    async fn list_folders(&self, bucket: &str, prefix: &str) -> Result<Vec<String>, AwsError> {
        self.recorder.call("list_folders", &[bucket, prefix])?;
        let mut folders: Vec<String> = self
            .keys(bucket, prefix)
            .into_iter()
            .filter_map(|key| key[prefix.len()..].find('/').map(|end| key[..prefix.len() + end + 1].to_string()))
            .collect();
        folders.dedup();
        Ok(folders)
    }

    async fn delete_keys(&self, bucket: &str, keys: &[String]) -> Result<Vec<FailedDelete>, AwsError> {
        self.delete(bucket, keys)
    }
}
