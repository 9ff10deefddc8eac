//! The one bounded reader for every untrusted file and standard input (bundles, events, rule and
//! policy files, pasted text): a size cap enforced while reading, UTF-8 checked, and one-line
//! errors that name the input and say what was expected.

use std::io::Read;
use std::path::Path;

/// What to read.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A file.
    File(&'a Path),
    /// Standard input.
    Stdin,
}

impl<'a> Input<'a> {
    /// `-` means standard input, anything else a file.
    pub fn from_arg(arg: &'a Path) -> Input<'a> {
        if arg.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::File(arg)
        }
    }

    /// The name errors use: the path, or `standard input`.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "standard input".to_string(),
        }
    }
}

/// How to read.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// What the input should be, for errors ("the JSON output of `aws ecs describe-tasks`").
    pub what: &'a str,
    /// The most bytes read.
    pub max_bytes: u64,
    /// Replace invalid UTF-8 instead of refusing it (pasted text).
    pub lossy: bool,
    /// Refuse input that is empty or only white space.
    pub non_empty: bool,
}

/// Why an input could not be read: its name and the reason. Displays as one line,
/// `NAME: REASON`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct InputError {
    /// The path, or `standard input`.
    pub name: String,
    /// What is wrong and what was expected.
    pub reason: String,
}

/// Reads `input` as text within `expect.max_bytes`.
pub fn read_text(input: Input<'_>, expect: Expect<'_>) -> Result<String, InputError> {
    let name = input.name();
    let fail = |reason: String| InputError {
        name: name.clone(),
        reason,
    };
    let what = expect.what;
    let limit = expect.max_bytes;
    let mut bytes = Vec::new();
    match input {
        Input::File(p) => {
            let meta = std::fs::metadata(p).map_err(|e| fail(format!("cannot read {what}: {}", io_reason(&e))))?;
            if meta.is_dir() {
                return Err(fail(format!("is a directory, expected {what}")));
            }
            if meta.len() > limit {
                return Err(fail(format!(
                    "{} bytes is more than the {limit}-byte limit for {what}",
                    meta.len()
                )));
            }
            std::fs::File::open(p)
                .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
                .map_err(|e| fail(format!("cannot read {what}: {}", io_reason(&e))))?;
        }
        Input::Stdin => {
            std::io::stdin()
                .take(limit + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| fail(format!("cannot read {what}: {}", io_reason(&e))))?;
        }
    }
    // A file can grow between the metadata and the read; stdin has no metadata at all.
    if bytes.len() as u64 > limit {
        return Err(fail(format!("more than the {limit}-byte limit for {what}")));
    }
    if expect.non_empty && bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(fail(format!("is empty, expected {what}")));
    }
    if expect.lossy {
        return Ok(String::from_utf8_lossy(&bytes).into_owned());
    }
    String::from_utf8(bytes).map_err(|e| {
        fail(format!(
            "is not UTF-8 text (invalid byte at offset {}), expected {what}",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// A short reason for an I/O error.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(max_bytes: u64) -> Expect<'static> {
        Expect {
            what: "a thing",
            max_bytes,
            lossy: false,
            non_empty: true,
        }
    }

    #[test]
    fn errors_name_the_file_and_what_was_expected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.json");
        let e = read_text(Input::File(&missing), expect(10))
            .expect_err("missing")
            .to_string();
        assert!(e.ends_with("nope.json: cannot read a thing: no such file"), "{e}");
        let e = read_text(Input::File(dir.path()), expect(10))
            .expect_err("dir")
            .to_string();
        assert!(e.contains("is a directory, expected a thing"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(11)).expect("write");
        let e = read_text(Input::File(&big), expect(10)).expect_err("big").to_string();
        assert!(e.contains("11 bytes is more than the 10-byte limit for a thing"), "{e}");
        let bad = dir.path().join("bad");
        std::fs::write(&bad, b"ok\xff").expect("write");
        let e = read_text(Input::File(&bad), expect(10)).expect_err("utf8").to_string();
        assert!(e.contains("not UTF-8 text (invalid byte at offset 2)"), "{e}");
        let lossy = Expect {
            lossy: true,
            ..expect(10)
        };
        assert_eq!(read_text(Input::File(&bad), lossy).expect("lossy"), "ok\u{fffd}");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").expect("write");
        let e = read_text(Input::File(&empty), expect(10))
            .expect_err("empty")
            .to_string();
        assert!(e.contains("is empty, expected a thing"), "{e}");
    }
}
