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
            open_file(p, &expect, fail)?
                .take(limit + 1)
                .read_to_end(&mut bytes)
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

/// The checks [`read_text`] makes before reading a file: it exists, is not a directory, and is
/// within the limit. Opens it.
fn open_file(p: &Path, expect: &Expect<'_>, fail: impl Fn(String) -> InputError) -> Result<std::fs::File, InputError> {
    let what = expect.what;
    let meta = std::fs::metadata(p).map_err(|e| fail(format!("cannot read {what}: {}", io_reason(&e))))?;
    if meta.is_dir() {
        return Err(fail(format!("is a directory, expected {what}")));
    }
    if meta.len() > expect.max_bytes {
        return Err(fail(format!(
            "{} bytes is more than the {}-byte limit for {what}",
            meta.len(),
            expect.max_bytes
        )));
    }
    std::fs::File::open(p).map_err(|e| fail(format!("cannot read {what}: {}", io_reason(&e))))
}

/// An input read a chunk at a time, with the checks of [`read_text`] made as the bytes arrive (the
/// byte limit, UTF-8, not empty), so a large file is parsed as it is read and never held whole.
/// [`Chunked::data`] is the read, checked and not yet consumed text; [`Chunked::fill`] reads more.
pub struct Chunked<'a> {
    reader: Box<dyn Read + 'a>,
    name: String,
    what: &'a str,
    max_bytes: u64,
    non_empty: bool,
    buf: Vec<u8>,
    /// `buf[start..checked]` is the data: valid UTF-8, not consumed.
    start: usize,
    checked: usize,
    /// `buf[checked..end]` was read but ends inside a UTF-8 sequence.
    end: usize,
    /// Bytes read so far, and the offset of `buf[0]` in the input.
    total: u64,
    base: u64,
    eof: bool,
    blank: bool,
    /// 1-based line of `buf[counted]`, and the input offset its line starts at (for error
    /// positions).
    counted: usize,
    line: usize,
    line_start: u64,
    /// How much to read at a time, at first.
    chunk: usize,
}

/// The first chunk read; it doubles when one value does not fit.
const CHUNK: usize = 256 * 1024;

impl<'a> Chunked<'a> {
    /// Opens `input` for a chunked read.
    pub fn open(input: Input<'a>, expect: Expect<'a>) -> Result<Chunked<'a>, InputError> {
        let name = input.name();
        let fail = |reason: String| InputError {
            name: name.clone(),
            reason,
        };
        let reader: Box<dyn Read + 'a> = match input {
            Input::File(p) => Box::new(open_file(p, &expect, fail)?),
            Input::Stdin => Box::new(std::io::stdin()),
        };
        Ok(Chunked::new(reader, name, expect))
    }

    /// Reads `reader`, named `name` in errors.
    pub fn new(reader: impl Read + 'a, name: String, expect: Expect<'a>) -> Chunked<'a> {
        Chunked {
            reader: Box::new(reader),
            name,
            what: expect.what,
            max_bytes: expect.max_bytes,
            non_empty: expect.non_empty,
            buf: Vec::new(),
            start: 0,
            checked: 0,
            end: 0,
            total: 0,
            base: 0,
            eof: false,
            blank: true,
            counted: 0,
            line: 1,
            line_start: 0,
            chunk: CHUNK,
        }
    }

    /// Reads `n` bytes at a time at first (tests use tiny chunks to cut values everywhere).
    pub fn with_chunk(mut self, n: usize) -> Chunked<'a> {
        self.chunk = n.max(1);
        self
    }

    /// The input's name, as errors give it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The text read and not yet consumed.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.checked]
    }

    /// True once the whole input has been read (the data may still hold some of it).
    pub fn at_eof(&self) -> bool {
        self.eof
    }

    /// Marks the first `n` bytes of the data as used.
    pub fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// The line and line start after the consumed bytes not yet counted (`buf[counted..start]`).
    fn lines_through_start(&self) -> (usize, u64) {
        let used = &self.buf[self.counted..self.start];
        match used.iter().rposition(|&b| b == b'\n') {
            Some(last) => (
                self.line + count_newlines(used),
                self.base + (self.counted + last + 1) as u64,
            ),
            None => (self.line, self.line_start),
        }
    }

    /// The 1-based line and the column (bytes before it on its line, as serde_json counts) of a
    /// position given relative to the data, as `line`/`column` within the data.
    pub fn position(&self, line: usize, column: usize) -> (usize, usize) {
        let (first, line_start) = self.lines_through_start();
        if line <= 1 {
            let before = self.base + self.start as u64 - line_start;
            (first, column + before as usize)
        } else {
            (first + line - 1, column)
        }
    }

    fn fail(&self, reason: String) -> InputError {
        InputError {
            name: self.name.clone(),
            reason,
        }
    }

    /// Reads more: false at the end of the input. Checks the limit and UTF-8 as it goes, and at
    /// the end that the input was not empty.
    pub fn fill(&mut self) -> Result<bool, InputError> {
        if self.eof {
            return Ok(false);
        }
        // Keep what is not consumed; grow when it fills the buffer (one value is that large).
        // Lines are counted here, a chunk at a time, for error positions.
        (self.line, self.line_start) = self.lines_through_start();
        self.counted = self.start;
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.checked -= self.start;
            self.end -= self.start;
            self.start = 0;
            self.counted = 0;
        }
        // Read a chunk, or as much as is held when more is (one value runs that long): a value of
        // any size is then parsed a logarithmic number of times.
        let read = self.chunk.max(self.end);
        if self.buf.len() < self.end + read {
            self.buf.resize(self.end + read, 0);
        }
        let what = self.what;
        let n = loop {
            match self.reader.read(&mut self.buf[self.end..self.end + read]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fail(format!("cannot read {what}: {}", io_reason(&e)))),
            }
        };
        self.total += n as u64;
        if self.total > self.max_bytes {
            return Err(self.fail(format!("more than the {}-byte limit for {what}", self.max_bytes)));
        }
        let fresh = &self.buf[self.end..self.end + n];
        if self.blank && !fresh.iter().all(|b| b.is_ascii_whitespace()) {
            self.blank = false;
        }
        self.end += n;
        if n == 0 {
            self.eof = true;
            if self.non_empty && self.blank {
                return Err(self.fail(format!("is empty, expected {what}")));
            }
        }
        // Check UTF-8 up to the last complete character (all of it at the end of the input).
        match std::str::from_utf8(&self.buf[self.checked..self.end]) {
            Ok(_) => self.checked = self.end,
            Err(e) if e.error_len().is_none() && !self.eof => self.checked += e.valid_up_to(),
            Err(e) => {
                let at = self.base + (self.checked + e.valid_up_to()) as u64;
                return Err(self.fail(format!(
                    "is not UTF-8 text (invalid byte at offset {at}), expected {what}"
                )));
            }
        }
        Ok(n > 0)
    }
}

/// The line breaks in `bytes`, counted a block at a time (a form the compiler vectorises: a
/// large log has a million of them).
fn count_newlines(bytes: &[u8]) -> usize {
    let mut blocks = bytes.chunks_exact(128);
    let mut n = 0;
    for block in blocks.by_ref() {
        n += usize::from(block.iter().map(|&b| u8::from(b == b'\n')).sum::<u8>());
    }
    n + blocks.remainder().iter().filter(|&&b| b == b'\n').count()
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
