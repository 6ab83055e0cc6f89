//! What a job's staging folder holds: the files staged for its run ([`StagedFile`]: the driver, the
//! model's sources, the job metadata, `FILE` assets' content), how they are named ([`FileNames`]:
//! safe, unique, never one of ours), and where the run's outputs and results land.

use std::borrow::Cow;
use std::collections::BTreeSet;



use crate::job::record::{Asset, ASSET_EXTERNAL_FILE, ASSET_FILE};
use crate::job::s3_uri::S3Uri;

pub const DRIVER_FILE_NAME: &str = "ModelOpPySparkDriver.py";

pub const METADATA_FILE_NAME: &str = "job-metadata.json";

pub const RESULTS_FOLDER: &str = "results/";

/// Where the content of `FILE` input and output assets is staged, under the job's folder. `FILE`
/// model assets are staged in the folder itself and shipped with `--files`, so they are in the
/// driver's working directory under their file name, as ModelOp's Spark runtime leaves them
/// (`german_credit_data_drift_detector_spark` `monitor.py` reads its `.avsc` schema from there).
pub const INPUTS_FOLDER: &str = "inputs/";

pub const OUTPUTS_FOLDER: &str = "outputs/";

/// The driver, embedded in the binary so the staged driver always matches the code that staged it.
pub const DRIVER_SOURCE: &str = include_str!("../../driver/ModelOpPySparkDriver.py");

/// A file to stage: its key under the job's staging folder, and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    pub name: String,
    pub content: FileContent,
    pub kind: FileKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    /// Text to upload: borrowed for what is built in (the driver, staged for every job without
    /// a copy), owned for what comes from the job.
    Text(Cow<'static, str>),
    /// Bytes to upload: a `FILE` asset's decoded `fileContent`.
    Bytes(Vec<u8>),
    /// A server-side copy from the model's own S3 location.
    CopyFrom(S3Uri),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    EntryPoint,
    /// Importable Python: passed with `--py-files`.
    PyFile,
    /// Any other file: passed with `--files`, available in the driver's working directory.
    File,
    /// Staged only: the model reads it by its `fileUrl` (a `FILE` input asset's content).
    Data,
}

impl StagedFile {
    /// The `Content-Type` it is staged with: Python source `text/x-python`, JSON
    /// `application/json`, anything else and every `Data` file (a `FILE` input's bytes, whatever
    /// its name says) `application/octet-stream`.
    pub fn content_type(&self) -> &'static str {
        match self.kind {
            FileKind::Data => "application/octet-stream",
            _ if self.name.ends_with(".py") => "text/x-python",
            _ if self.name.ends_with(".json") => "application/json",
            _ => "application/octet-stream",
        }
    }
}

/// The S3 key of a staged file: the job's staging prefix and the file's name.
pub fn staged_key(staging_prefix: &str, name: &str) -> String {
    format!("{staging_prefix}{name}")
}

/// Where each output asset of a job is written, as the model was told (`None` for an output the
/// model was not given): an `EXTERNAL_FILE`'s normalised URL, a `FILE`'s place under the job's
/// `outputs/` folder. The monitor reads the outputs back through this, so it names the same places
/// as [`crate::launch::plan::plan_job`] did.
pub fn output_locations(staging_uri: &str, outputs: &[Asset]) -> Vec<Option<S3Uri>> {
    let mut names = FileNames::default();
    outputs
        .iter()
        .enumerate()
        .map(|(position, asset)| match asset.asset_type.as_deref() {
            Some(ASSET_EXTERNAL_FILE) => asset.file_url.as_deref().and_then(|u| S3Uri::from_asset_url(u, asset.in_s3_repository()).ok()),
            Some(ASSET_FILE) => S3Uri::parse(&format!("{staging_uri}{OUTPUTS_FOLDER}{}", names.claim_file(&asset.label(position)))),
            _ => None,
        })
        .collect()
}

/// Hands out file names in the staging folder: safe characters only, unique, never one of ours.
#[derive(Default)]
pub struct FileNames {
    taken: BTreeSet<String>,
}

impl FileNames {
    pub fn claim_module(&mut self, label: &str) -> String {
        let stem = label.strip_suffix(".py").unwrap_or(label);
        let mut module: String = stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
        if module.is_empty() || module.starts_with(|c: char| c.is_ascii_digit()) {
            module.insert_str(0, "model_");
        }
        let mut candidate = module.clone();
        let mut n = 2;
        while !self.is_free(&format!("{candidate}.py")) {
            candidate = format!("{module}_{n}");
            n += 1;
        }
        self.taken.insert(format!("{candidate}.py"));
        candidate
    }

    pub fn claim_file(&mut self, label: &str) -> String {
        let base = label.rsplit('/').next().unwrap_or(label);
        let mut name: String = base.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        if name.is_empty() || name.starts_with('.') {
            name.insert_str(0, "file");
        }
        // Never a dot at 0: a name that started with one has "file" before it.
        let (stem, ext) = match name.rfind('.') {
            Some(i) => (name[..i].to_string(), name[i..].to_string()),
            None => (name.clone(), String::new()),
        };
        let mut candidate = name.clone();
        let mut n = 2;
        while !self.is_free(&candidate) {
            candidate = format!("{stem}_{n}{ext}");
            n += 1;
        }
        self.taken.insert(candidate.clone());
        candidate
    }

    fn is_free(&self, name: &str) -> bool {
        !self.taken.contains(name) && ![DRIVER_FILE_NAME, METADATA_FILE_NAME, "results"].contains(&name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_file_is_under_the_jobs_staging_prefix() {
        assert_eq!(staged_key("modelop-spark-serverless/job-1/", "model.py"), "modelop-spark-serverless/job-1/model.py");
        assert_eq!(staged_key("modelop-spark-serverless/job-1/", "inputs/in.json"), "modelop-spark-serverless/job-1/inputs/in.json");
    }

    #[test]
    fn a_staged_file_has_the_content_type_of_its_name_unless_it_is_data() {
        // (name, kind, Content-Type)
        let cases = [
            ("ModelOpPySparkDriver.py", FileKind::EntryPoint, "text/x-python"),
            ("helpers.py", FileKind::PyFile, "text/x-python"),
            ("job-metadata.json", FileKind::File, "application/json"),
            ("schema.avsc", FileKind::File, "application/octet-stream"),
            ("inputs/sample.json", FileKind::Data, "application/octet-stream"),
            ("inputs/script.py", FileKind::Data, "application/octet-stream"),
        ];
        for (name, kind, content_type) in cases {
            let file = StagedFile { name: name.into(), content: FileContent::Text("".into()), kind };
            assert_eq!(file.content_type(), content_type, "{name} ({kind:?})");
        }
    }
}
