//! The audit log: one JSON line per decision, written off the decision path.
//!
//! Destinations: standard output, a file with size-based rotation, or
//! nowhere. Raw paths and query strings are never written unless the
//! deployment opted in (`telemetry.log_raw_paths`, for meshes without PHI).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use hallpass_vocab::{Credentials, reason_label};
use serde::Serialize;
use time::OffsetDateTime;

use crate::DecisionEvent;

/// Where audit records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    /// Standard output.
    Stdout,
    /// No audit records.
    Off,
    /// A file, rotated by size: `path`, `path.1` … `path.<keep>`.
    File {
        /// The active file.
        path: PathBuf,
        /// Rotate when the active file would exceed this many bytes.
        max_bytes: u64,
        /// Rotated files kept.
        keep: u32,
    },
}

#[derive(Serialize)]
struct Record<'a> {
    time: String,
    decision_id: &'a str,
    decision: &'a str,
    reason: &'a str,
    mode: &'a str,
    source: &'a str,
    destination: &'a str,
    method: &'a str,
    route: &'a str,
    rule: &'a str,
    credentials: Credentials,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path_issue: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
}

/// Format one audit record as a JSON line (with the trailing newline).
pub fn audit_line(event: &DecisionEvent, decision_id: &str) -> String {
    let record = Record {
        time: rfc3339_ms(event.time_ms),
        decision_id,
        decision: event.decision.as_str(),
        reason: reason_label(event.reason),
        mode: event.mode.as_str(),
        source: event.source_id.as_deref().unwrap_or(&event.source_label),
        destination: &event.destination,
        method: event.method.as_str(),
        route: event.route.as_deref().unwrap_or(""),
        rule: event.rule.as_deref().unwrap_or(""),
        credentials: event.credentials,
        request_id: event.request_id.as_deref(),
        trace_id: event.trace_id.as_deref(),
        path_issue: event.path_issue.map(|issue| issue.code()),
        path: event.raw_path.as_deref(),
    };
    let mut line = serde_json::to_string(&record).unwrap_or_default();
    line.push('\n');
    line
}

/// RFC 3339 in UTC with exactly three fractional digits, as documented:
/// `Rfc3339` would drop trailing zeros (`…29.14Z`), so records would vary in
/// width and not sort as text.
fn rfc3339_ms(unix_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                t.millisecond()
            )
        })
        .unwrap_or_default()
}

/// An open audit destination.
#[derive(Debug)]
pub struct AuditWriter {
    target: AuditTarget,
    file: Option<File>,
    size: u64,
}

impl AuditWriter {
    /// Open `target` (a file is created or appended to).
    pub fn open(target: AuditTarget) -> io::Result<Self> {
        let mut writer = Self {
            target,
            file: None,
            size: 0,
        };
        writer.reopen()?;
        Ok(writer)
    }

    /// A writer that opens its file on the first write (and retries on every
    /// write until that works), for a file that cannot be opened yet: each
    /// failed write is then an error the caller counts, not a silent loss.
    pub fn deferred(target: AuditTarget) -> Self {
        Self {
            target,
            file: None,
            size: 0,
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        if let AuditTarget::File { path, .. } = &self.target {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            self.size = file.metadata()?.len();
            self.file = Some(file);
        }
        Ok(())
    }

    /// Write one line, rotating first if it would not fit.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        match &self.target {
            AuditTarget::Off => Ok(()),
            AuditTarget::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()
            }
            AuditTarget::File { max_bytes, .. } => {
                let len = line.len() as u64;
                if self.size > 0 && self.size + len > *max_bytes {
                    self.rotate()?;
                }
                if self.file.is_none() {
                    self.reopen()?;
                }
                let file = self
                    .file
                    .as_mut()
                    .ok_or_else(|| io::Error::other("audit file not open"))?;
                file.write_all(line.as_bytes())?;
                self.size += len;
                Ok(())
            }
        }
    }

    /// `path.N-1` → `path.N` … `path` → `path.1`, dropping the oldest.
    fn rotate(&mut self) -> io::Result<()> {
        let AuditTarget::File { path, keep, .. } = &self.target else {
            return Ok(());
        };
        self.file = None;
        let numbered = |n: u32| {
            let mut p = path.clone().into_os_string();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if *keep == 0 {
            std::fs::remove_file(path)?;
        } else {
            let _ = std::fs::remove_file(numbered(*keep));
            for n in (1..*keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1))?;
                }
            }
            std::fs::rename(path, numbered(1))?;
        }
        self.reopen()
    }
}
