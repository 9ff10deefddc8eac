//! Renderers: pure functions from the output model to a writer. Only `text` is ever colored, and
//! only through the [`Styles`] decided once in `main`; untrusted strings in the model were
//! sanitized when the model was built, and markdown escapes them again for chat.

pub mod markdown;
pub mod text;

use std::io::{self, Write};

use owo_colors::Style;

use crate::cli::Format;
use crate::verdict::Diagnosis;

/// The styles text output uses. `Styles::default()` is plain; `colored()` adds ANSI colors.
#[derive(Debug, Clone, Copy, Default)]
pub struct Styles {
    pub headline: Style,
    pub iam: Style,
    pub not_iam: Style,
    pub unknown: Style,
    pub label: Style,
    pub dim: Style,
    pub code: Style,
}

impl Styles {
    /// Colored styles.
    pub fn colored() -> Styles {
        Styles {
            headline: Style::new().bold(),
            iam: Style::new().red().bold(),
            not_iam: Style::new().green().bold(),
            unknown: Style::new().yellow().bold(),
            label: Style::new().cyan(),
            dim: Style::new().dimmed(),
            code: Style::new().yellow(),
        }
    }
}

/// Render settings.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub styles: Styles,
    /// Most findings quoted.
    pub max_evidence: usize,
}

/// Writes a diagnosis in the chosen format.
pub fn diagnosis(d: &Diagnosis, format: Format, opts: &RenderOptions, w: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Text => text::diagnosis(d, opts, w),
        Format::Markdown => markdown::diagnosis(d, opts, w),
        Format::Json => json(d, w),
    }
}

/// Pretty JSON of any serializable model, with a final newline.
pub fn json<T: serde::Serialize>(value: &T, w: &mut dyn Write) -> io::Result<()> {
    // `From` keeps an io error's kind, so a closed pipe is still recognised as one.
    serde_json::to_writer_pretty(&mut *w, value).map_err(io::Error::from)?;
    writeln!(w)
}
