//! `hallpass policy replay` (feature `tools`): re-decide recorded calls
//! under a candidate policy and print what would change
//! (`hallpass_insights::replay`). A CI gate: exit 1 when any recorded call
//! would newly be denied, or the candidate is invalid; 0 otherwise; 64 on
//! usage errors (an unreadable audit log, a bad `--since`).

use std::io::BufReader;
use std::path::PathBuf;

use hallpass_insights::replay::Replay;
use hallpass_policy::check::unix_now_ms;
use hallpass_policy::parse_rfc3339_ms;
use hallpass_telemetry::Escaped;

use crate::policy_cmd::Format;
use crate::{FAILED, USAGE};

/// Arguments of `hallpass policy replay`.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The candidate policy: a file, or several files and directories.
    #[arg(required = true, num_args = 1.., value_name = "CANDIDATE")]
    candidate: Vec<PathBuf>,
    /// Audit log files (JSON lines, as hallpass writes them); give the
    /// rotated ones (`audit.jsonl.1` …) too for a longer history.
    #[arg(long, required = true, num_args = 1.., value_name = "FILE")]
    audit_log: Vec<PathBuf>,
    /// Only records from this time on: RFC 3339, or an age such as `24h`,
    /// `7d`, `30m` before now.
    #[arg(long, value_name = "TIME|AGE")]
    since: Option<String>,
    /// Output: `text` for people, `json` for tools.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// Run the replay; the exit code.
pub fn replay(args: &ReplayArgs) -> u8 {
    let since = match args.since.as_deref().map(since_ms).transpose() {
        Ok(since) => since,
        Err(e) => {
            eprintln!("error: --since: {e}");
            return USAGE;
        }
    };
    let policy = match crate::policy_cmd::load_policy(&args.candidate) {
        Ok(Some(policy)) => policy,
        Ok(None) => return FAILED,
        Err(e) => {
            eprintln!("error: {e}");
            return USAGE;
        }
    };
    let mut replay = Replay::new(&policy, since);
    for file in &args.audit_log {
        let read = std::fs::File::open(file).and_then(|f| replay.read(BufReader::new(f)));
        if let Err(e) = read {
            eprintln!(
                "error: cannot read {}: {}",
                Escaped(&file.display().to_string()),
                e
            );
            return USAGE;
        }
    }
    let name = crate::policy_cmd::shown(&args.candidate);
    match args.format {
        Format::Text => print!("{}", replay.to_text(&name)),
        Format::Json => println!("{}", replay.to_json(&name)),
    }
    u8::from(replay.newly_denied() > 0)
}

/// `--since`: RFC 3339, or an age (`30m`, `24h`, `7d`) before now, as Unix ms.
fn since_ms(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let unit = |suffix: char, ms: i64| {
        text.strip_suffix(suffix)
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .and_then(|n| n.checked_mul(ms))
    };
    let age = unit('m', 60_000)
        .or_else(|| unit('h', 3_600_000))
        .or_else(|| unit('d', 86_400_000));
    match age {
        Some(age) => Ok(unix_now_ms().saturating_sub(age)),
        None => parse_rfc3339_ms(text)
            .map_err(|e| format!("{e} (expected RFC 3339, or an age such as 24h or 7d)")),
    }
}
