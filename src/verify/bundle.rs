//! Verification from a captured bundle: `capture` writes every answer verification read (and every
//! error, as `{"Error": {"Code", "Message"}}`) under `iam/` and `resource-policies/`, at the path
//! [`Call::bundle_path`] names, in the AWS CLI's shape; `why --from DIR` reads them back with no
//! network. A call the bundle has no file for is "not in the bundle".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::calls::{Call, ReadError, Reader};
use crate::input::{self, Expect, Input};

/// The largest answer file read (IAM documents are at most a few KB; this is generous).
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;

/// Answers calls from a bundle directory.
#[derive(Debug, Clone)]
pub struct BundleReader {
    dir: PathBuf,
}

impl BundleReader {
    /// A reader of the bundle in `dir`.
    pub fn new(dir: &Path) -> BundleReader {
        BundleReader { dir: dir.to_path_buf() }
    }

    /// Whether the bundle holds anything verification reads (a capture made with verification).
    pub fn has_policies(&self) -> bool {
        self.dir.join("iam").is_dir()
    }
}

impl Reader for BundleReader {
    async fn read(&self, call: &Call) -> Result<Value, ReadError> {
        let path = self.dir.join(call.bundle_path());
        if !path.is_file() {
            return Err(ReadError::NotInBundle);
        }
        let expect = Expect {
            what: "the AWS CLI's JSON output",
            max_bytes: MAX_ANSWER_BYTES,
            lossy: false,
            non_empty: true,
        };
        let text = input::read_text(Input::File(&path), expect).map_err(|e| ReadError::Failed(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            ReadError::Failed(format!(
                "{}: not JSON ({e})",
                crate::sanitize::error_quote(&path.display().to_string(), 200)
            ))
        })?;
        match ReadError::from_bundle(&v) {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }
}

/// Writes the answers (and errors) verification read into the bundle in `dir`; returns the files.
///
/// # Errors
/// The first file that cannot be written.
pub fn write_answers(answers: &BTreeMap<Call, Result<Value, ReadError>>, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (call, answer) in answers {
        let path = dir.join(call.bundle_path());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let body = match answer {
            Ok(v) => v.clone(),
            Err(e) => e.to_bundle(),
        };
        let text = serde_json::to_string_pretty(&body).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        files.push(path);
    }
    Ok(files)
}
