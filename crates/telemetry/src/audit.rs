//! The audit log: one JSON line per decision, written off the decision path.
//!
//! Destinations: standard output, a file with size-based rotation, or
//! nowhere. Raw paths and query strings are never written unless the
//! deployment opted in (`telemetry.log_raw_paths`, for meshes without PHI).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use hallpass_vocab::{BREAK_GLASS_REASON, Credentials, reason_label};
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
    time: &'a str,
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
    /// Left out when undeclared (`none`), so records of a policy without
    /// classes are unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    data_class: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    break_glass: Option<BreakGlassRecord<'a>>,
}

/// The `break_glass` object of a record allowed by an emergency grant.
#[derive(Serialize)]
struct BreakGlassRecord<'a> {
    grant: &'a str,
    ticket: &'a str,
    opened_by: &'a str,
}

/// Format one audit record as a JSON line (with the trailing newline).
pub fn audit_line(event: &DecisionEvent, decision_id: &str) -> String {
    let mut line = Vec::with_capacity(512);
    write_record(&mut line, event, decision_id);
    String::from_utf8(line).unwrap_or_default()
}

/// Append one audit record, as a JSON line with its newline, to `out`:
/// [`audit_line`] without a `String` of its own (the worker writes straight
/// into its batch).
fn write_record(out: &mut Vec<u8>, event: &DecisionEvent, decision_id: &str) {
    let mut time = [0u8; 32];
    let record = Record {
        time: rfc3339_ms(event.time_ms, &mut time),
        decision_id,
        decision: event.decision.as_str(),
        reason: if event.break_glass.is_some() {
            BREAK_GLASS_REASON
        } else {
            reason_label(event.reason)
        },
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
        data_class: event
            .data_class
            .is_declared()
            .then(|| event.data_class.as_str()),
        path: event.raw_path.as_deref(),
        break_glass: event.break_glass.as_ref().map(|m| BreakGlassRecord {
            grant: &m.grant,
            ticket: &m.ticket,
            opened_by: &m.opened_by,
        }),
    };
    let start = out.len();
    // Serializing these fields cannot fail; if it ever did, no half line.
    if serde_json::to_writer(&mut *out, &record).is_err() {
        out.truncate(start);
        return;
    }
    out.push(b'\n');
}

/// RFC 3339 in UTC with exactly three fractional digits, as documented:
/// `Rfc3339` would drop trailing zeros (`…29.14Z`), so records would vary in
/// width and not sort as text. Written into `buf` (no allocation); empty for
/// a time out of range.
fn rfc3339_ms(unix_ms: i64, buf: &mut [u8; 32]) -> &str {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000) else {
        return "";
    };
    let mut cursor = io::Cursor::new(buf.as_mut_slice());
    let written = write!(
        cursor,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    );
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    match written {
        Ok(()) => buf
            .get(..len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or(""),
        Err(_) => "",
    }
}

/// Records buffered by the worker before one `write`: the batch is written
/// when the worker's queue is empty, when it holds this many records, or
/// when it reaches [`BATCH_BYTES`] (the memory bound of the buffer).
pub const BATCH_RECORDS: usize = 256;
/// Bytes buffered before the batch is written regardless of its records.
pub const BATCH_BYTES: usize = 64 * 1024;

/// An open audit destination.
#[derive(Debug)]
pub struct AuditWriter {
    target: AuditTarget,
    file: Option<File>,
    /// Device and inode of `file`, to see it deleted or replaced.
    identity: Option<(u64, u64)>,
    size: u64,
    /// Records appended but not yet written (one batch).
    batch: Vec<u8>,
    /// How many records `batch` holds.
    batched: u64,
}

impl AuditWriter {
    /// Open `target` (a file is created or appended to).
    pub fn open(target: AuditTarget) -> io::Result<Self> {
        let mut writer = Self::deferred(target);
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
            identity: None,
            size: 0,
            batch: Vec::new(),
            batched: 0,
        }
    }

    fn reopen(&mut self) -> io::Result<()> {
        if let AuditTarget::File { path, .. } = &self.target {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new().create(true).append(true).open(path)?;
            let meta = file.metadata()?;
            self.size = meta.len();
            self.identity = Some((meta.dev(), meta.ino()));
            self.file = Some(file);
        }
        Ok(())
    }

    /// Write one line now (after any batched records), rotating first if it
    /// would not fit.
    pub fn write_line(&mut self, line: &str) -> io::Result<()> {
        if self.target == AuditTarget::Off {
            return Ok(());
        }
        if self.flush() > 0 {
            return Err(io::Error::other(
                "batched audit records could not be written",
            ));
        }
        self.write_bytes(line.as_bytes())
    }

    /// Add the record of `event` to the batch (nothing is written yet, unless
    /// the batch is full or the record would not fit in the file before
    /// rotation). Returns how many records were lost to a failed write.
    pub fn append(&mut self, event: &DecisionEvent, decision_id: &str) -> u64 {
        if self.target == AuditTarget::Off {
            return 0;
        }
        let mut lost = 0;
        let start = self.batch.len();
        write_record(&mut self.batch, event, decision_id);
        let len = (self.batch.len() - start) as u64;
        if let AuditTarget::File { max_bytes, .. } = &self.target {
            // Rotation happens between records: write the ones before this
            // one to the file they belong in first.
            let pending = start as u64;
            if pending > 0 && self.size + pending + len > *max_bytes {
                let record = self.batch.split_off(start);
                lost += self.flush();
                self.batch = record;
            }
        }
        self.batched += 1;
        if self.batched >= BATCH_RECORDS as u64 || self.batch.len() >= BATCH_BYTES {
            lost += self.flush();
        }
        lost
    }

    /// No records waiting in the batch?
    pub fn is_empty(&self) -> bool {
        self.batched == 0
    }

    /// Write the batch with one `write`. Returns how many records were lost
    /// (all of the batch, when the write fails; 0 otherwise).
    pub fn flush(&mut self) -> u64 {
        let lost = match self.write_batch() {
            Ok(()) => 0,
            Err(_) => self.batched,
        };
        self.batch.clear();
        self.batched = 0;
        // A burst's buffer is not kept for ever.
        if self.batch.capacity() > BATCH_BYTES * 2 {
            self.batch.shrink_to(BATCH_BYTES);
        }
        lost
    }

    fn write_batch(&mut self) -> io::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let written = self.write_bytes(&batch);
        self.batch = batch;
        written
    }

    /// Write whole records, rotating first if they would not fit.
    fn write_bytes(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &self.target {
            AuditTarget::Off => Ok(()),
            AuditTarget::Stdout => {
                let mut out = io::stdout().lock();
                out.write_all(bytes)?;
                out.flush()
            }
            AuditTarget::File { max_bytes, .. } => {
                let len = bytes.len() as u64;
                if self.size > 0 && self.size + len > *max_bytes {
                    self.rotate()?;
                }
                if self.file.is_some() && !self.still_at_path() {
                    // Deleted or replaced under us: writing on would put
                    // the records into an unlinked inode, lost. Start the
                    // file again at its path.
                    self.file = None;
                }
                if self.file.is_none() {
                    self.reopen()?;
                }
                let file = self
                    .file
                    .as_mut()
                    .ok_or_else(|| io::Error::other("audit file not open"))?;
                file.write_all(bytes)?;
                self.size += len;
                Ok(())
            }
        }
    }

    /// Is the open file still the one at the target path? (One `stat` per
    /// batch.)
    fn still_at_path(&self) -> bool {
        let AuditTarget::File { path, .. } = &self.target else {
            return true;
        };
        std::fs::metadata(path).is_ok_and(|m| self.identity == Some((m.dev(), m.ino())))
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
