//! The problems of one file, printed for people (`FILE:LINE:COL:` lines)
//! or for CI (JSON).

use std::fmt::Write as _;

use serde::Serialize;

use crate::{Problem, Severity};

/// Everything found in one file: errors and warnings, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Errors and warnings, in file order.
    pub findings: Vec<Problem>,
}

impl Report {
    /// A report of `findings` (kept in the order given).
    pub fn new(findings: Vec<Problem>) -> Self {
        Self { findings }
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The codes found, in order (handy in tests).
    pub fn codes(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.code).collect()
    }

    /// `FILE:LINE:COL: severity[code]: path: message` lines, then a summary.
    pub fn to_text(&self, file: &str) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let source = f.file.as_deref().unwrap_or(file);
            let at = match f.location {
                Some(l) => format!("{source}:{l}"),
                None => source.to_owned(),
            };
            let _ = write!(
                out,
                "{at}: {}[{}]: {}: {}",
                f.severity.as_str(),
                f.code,
                f.path,
                f.message
            );
            if let Some(hint) = &f.hint {
                let _ = write!(out, "; {hint}");
            }
            out.push('\n');
        }
        let _ = match (self.errors(), self.warnings()) {
            (0, 0) => writeln!(out, "{file}: ok"),
            (0, w) => writeln!(out, "{file}: ok, {w} warning(s)"),
            (e, w) => writeln!(out, "{file}: {e} error(s), {w} warning(s)"),
        };
        out
    }

    /// `{"file", "errors", "warnings", "findings": [{severity, code, path,
    /// line, column, message}]}` for CI.
    pub fn to_json(&self, file: &str) -> String {
        #[derive(Serialize)]
        struct Out<'a> {
            file: &'a str,
            errors: usize,
            warnings: usize,
            findings: &'a [Problem],
        }
        serde_json::to_string_pretty(&Out {
            file,
            errors: self.errors(),
            warnings: self.warnings(),
            findings: &self.findings,
        })
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Location;

    #[test]
    fn text_names_file_line_column_severity_and_code() {
        let report = Report::new(vec![
            Problem::error("unknown_key", "admin.lisen", "unknown key")
                .at(Some(Location::new(4, 3)))
                .with_hint("valid keys are: listen"),
            Problem::warning("audit_mode", "w.mode", "audit mode"),
        ]);
        assert_eq!(
            report.to_text("c.yaml"),
            "c.yaml:4:3: error[unknown_key]: admin.lisen: unknown key; valid keys are: listen\n\
             c.yaml: warning[audit_mode]: w.mode: audit mode\n\
             c.yaml: 1 error(s), 1 warning(s)\n"
        );
        assert_eq!(Report::default().to_text("c.yaml"), "c.yaml: ok\n");
    }
}
