//! Where output goes, as uv's printer does it: data on stdout (text, json or ndjson), progress and
//! hints on stderr. Colour goes through anstream, which drops it when the stream is not a terminal,
//! when NO_COLOR is set, or with `--no-color`.

use std::io::Write;

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use shared::job::record::JobStatus;

use crate::cli::Format;

/// Headings and labels.
pub const BOLD: Style = Style::new().bold();
/// Hints and secondary text.
pub const DIM: Style = Style::new().dimmed();
/// Warnings.
pub const WARN: Style = AnsiColor::Yellow.on_default();

/// The style of a job status: green COMPLETE, red ERROR, yellow CANCELLED, cyan while it goes.
pub fn status_style(status: Option<JobStatus>) -> Style {
    match status {
        Some(JobStatus::Complete) => AnsiColor::Green.on_default().bold(),
        Some(JobStatus::Error) => AnsiColor::Red.on_default().bold(),
        Some(JobStatus::Cancelled) => AnsiColor::Yellow.on_default().bold(),
        Some(_) => AnsiColor::Cyan.on_default(),
        None => Style::new(),
    }
}

/// `text` in `style` (plain once anstream strips it).
pub fn paint(style: Style, text: impl std::fmt::Display) -> String {
    format!("{style}{text}{style:#}")
}

/// The data printer of one command.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub format: Format,
}

impl Printer {
    /// Text for people: written as is (colour stripped where it must be).
    pub fn text(&self, text: &str) {
        self.text_to(&mut anstream::stdout().lock(), text);
    }

    /// [`Printer::text`] to `out` (stdout, or a test's buffer).
    pub fn text_to(&self, out: &mut dyn Write, text: &str) {
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = out.write_all(text.as_bytes());
        if !text.ends_with('\n') {
            let _ = out.write_all(b"\n");
        }
        let _ = out.flush();
    }

    /// One JSON document (pretty for `json`, one line for `ndjson`).
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) {
        self.json_to(&mut std::io::stdout().lock(), value);
    }

    /// [`Printer::json`] to `out`.
    pub fn json_to<T: Serialize + ?Sized>(&self, out: &mut dyn Write, value: &T) {
        let text = match self.format {
            Format::Json => serde_json::to_string_pretty(value),
            _ => serde_json::to_string(value),
        }
        .expect("CLI output is always serializable");
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// A list: one JSON array for `json`, one object a line for `ndjson`.
    pub fn list<T: Serialize>(&self, items: &[T]) {
        match self.format {
            Format::Ndjson => items.iter().for_each(|item| self.json(item)),
            _ => self.json(items),
        }
    }

    /// Whether the output is for people.
    pub fn is_text(&self) -> bool {
        self.format == Format::Text
    }
}

/// A line on stderr: progress, a hint, a warning; never data.
pub fn note(text: impl std::fmt::Display) {
    note_to(&mut anstream::stderr().lock(), text);
}

/// [`note`] to `err` (stderr, or a test's buffer).
pub fn note_to(err: &mut dyn Write, text: impl std::fmt::Display) {
    let _ = writeln!(err, "{text}");
}

/// A hint on stderr, dimmed.
pub fn hint(text: impl std::fmt::Display) {
    hint_to(&mut anstream::stderr().lock(), text);
}

/// [`hint`] to `err`.
pub fn hint_to(err: &mut dyn Write, text: impl std::fmt::Display) {
    note_to(err, paint(DIM, format!("hint: {text}")));
}
