//! `hallpass breakglass open|close|list`: emergency grants in the overlay
//! file the sidecar reads next to its policy (`policy.break_glass_file`), so
//! the reviewed policy is never edited in an emergency.
//!
//! Every write is atomic (a temporary file in the same directory, synced,
//! then renamed over the overlay), so a sidecar never reads half a file.
//! Exit codes: 0 done, 1 refused (invalid grant, unknown grant, unreadable
//! or invalid overlay), 64 usage.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use hallpass_policy::{
    BreakGlassDocument, BreakGlassGrants, OverlayDocument, format_time_ms, grant_state,
    grants_json, parse_duration, parse_overlay, parse_rfc3339_ms, valid_grant_name,
};

/// Refused: the overlay was left as it was.
const FAILED: u8 = 1;

/// `hallpass breakglass …`.
#[derive(Debug, Subcommand)]
pub enum BreakglassCommand {
    /// Open an emergency grant: write it to the overlay file.
    Open(Box<OpenArgs>),
    /// Close a grant: remove it from the overlay file.
    Close {
        /// The grant's name (see `list`).
        grant: String,
        /// The overlay file (`policy.break_glass_file` of the sidecars).
        #[arg(long, env = "HALLPASS_POLICY_BREAK_GLASS_FILE")]
        overlay: PathBuf,
    },
    /// List the grants in the overlay file, with their state.
    List {
        /// The overlay file.
        #[arg(long, env = "HALLPASS_POLICY_BREAK_GLASS_FILE")]
        overlay: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

/// `list` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One line per grant.
    Text,
    /// A JSON array.
    Json,
}

/// `hallpass breakglass open`.
#[derive(Debug, clap::Args)]
pub struct OpenArgs {
    /// Caller SPIFFE ID or pattern (`/*`, `/**`); repeat for more.
    #[arg(long, required = true)]
    from: Vec<String>,
    /// The destination SPIFFE ID: only its sidecar uses the grant.
    #[arg(long)]
    to: String,
    /// HTTP method; repeat for more. Default: any method.
    #[arg(long = "method")]
    methods: Vec<String>,
    /// Path template (`/patients/{patient}/results`); repeat for more.
    /// Default: any path.
    #[arg(long = "path")]
    paths: Vec<String>,
    /// Why the grant is needed.
    #[arg(long)]
    reason: String,
    /// The incident or change ticket.
    #[arg(long)]
    ticket: String,
    /// Who opens it.
    #[arg(long)]
    opened_by: String,
    /// How long it stays open (`2h`, `90m`, `1h30m`).
    #[arg(long, conflicts_with = "expires", required_unless_present = "expires")]
    expires_in: Option<String>,
    /// When it closes (RFC 3339).
    #[arg(long)]
    expires: Option<String>,
    /// The grant's name (the `grant` metric label). Default: from the ticket.
    #[arg(long)]
    name: Option<String>,
    /// The longest grant allowed; keep it equal to the sidecars'
    /// `policy.break_glass_max_duration_seconds`.
    #[arg(long, default_value = "4h")]
    max_duration: String,
    /// The overlay file (`policy.break_glass_file` of the sidecars).
    #[arg(long, env = "HALLPASS_POLICY_BREAK_GLASS_FILE")]
    overlay: PathBuf,
}

/// Run one `breakglass` command.
pub fn run(command: BreakglassCommand) -> ExitCode {
    let now_ms = now_ms();
    let done = match command {
        BreakglassCommand::Open(args) => open(&args, now_ms),
        BreakglassCommand::Close { grant, overlay } => close(&grant, &overlay, now_ms),
        BreakglassCommand::List { overlay, format } => list(&overlay, format, now_ms),
    };
    match done {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(FAILED)
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The overlay as it is; a missing file is an empty overlay. An overlay
/// that does not parse is an error: it is never overwritten blindly.
fn read_overlay(path: &Path) -> Result<OverlayDocument, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_overlay(&text).map_err(|e| {
            format!(
                "{}: {e}\nfix or remove the file before changing grants",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OverlayDocument::default()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Write the overlay atomically: a temporary file created exclusively in
/// the same directory, synced, renamed over the overlay.
fn write_overlay(path: &Path, doc: &OverlayDocument) -> Result<(), String> {
    let text = doc.to_yaml().map_err(|e| e.to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("overlay");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// A grant name from the ticket: its plain characters, `bg-` in front.
fn name_from_ticket(ticket: &str) -> String {
    let plain: String = ticket
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(60)
        .collect();
    format!("bg-{}", plain.trim_matches('-'))
}

fn open(args: &OpenArgs, now_ms: i64) -> Result<(), String> {
    let max_ms = parse_duration(&args.max_duration).map_err(|e| format!("--max-duration {e}"))?;
    // Whole seconds: what the file shows is what is enforced.
    let opened_ms = now_ms.div_euclid(1000) * 1000;
    let expires_ms = match (&args.expires_in, &args.expires) {
        (Some(d), _) => {
            opened_ms.saturating_add(parse_duration(d).map_err(|e| format!("--expires-in {e}"))?)
        }
        (None, Some(t)) => parse_rfc3339_ms(t).map_err(|e| format!("--expires {e}"))?,
        (None, None) => return Err("--expires-in or --expires is required".into()),
    };
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| name_from_ticket(&args.ticket));
    if !valid_grant_name(&name) {
        return Err(format!(
            "grant name `{name}`: 1 to 64 letters, digits, `-`, `_` or `.`; pass --name"
        ));
    }
    let mut doc = read_overlay(&args.overlay)?;
    // Expired grants are inert: dropped here, so the file shows what is open.
    let before = doc.break_glass.len();
    doc.break_glass
        .retain(|g| grant_state(g, now_ms) != "expired");
    let dropped = before - doc.break_glass.len();
    if doc.break_glass.iter().any(|g| g.name == name) {
        return Err(format!(
            "a grant named `{name}` is already open; close it first, or pass another --name"
        ));
    }
    let grant = BreakGlassDocument {
        name: name.clone(),
        from: args.from.clone(),
        to: args.to.clone(),
        methods: (!args.methods.is_empty()).then(|| args.methods.clone()),
        paths: (!args.paths.is_empty()).then(|| args.paths.clone()),
        reason: args.reason.clone(),
        ticket: args.ticket.clone(),
        opened_by: args.opened_by.clone(),
        opened: format_time_ms(opened_ms),
        expires: format_time_ms(expires_ms),
    };
    doc.break_glass.push(grant);
    if let Err(problems) = BreakGlassGrants::compile(&doc.break_glass, max_ms, "break_glass") {
        let lines: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
        return Err(format!("grant refused:\n{}", lines.join("\n")));
    }
    write_overlay(&args.overlay, &doc)?;
    if dropped > 0 {
        println!("removed {dropped} expired grant(s)");
    }
    println!(
        "opened break-glass grant {name}: {} -> {} until {} (ticket {}, by {})",
        args.from.join(", "),
        args.to,
        format_time_ms(expires_ms),
        args.ticket,
        args.opened_by
    );
    Ok(())
}

fn close(grant: &str, overlay: &Path, now_ms: i64) -> Result<(), String> {
    let mut doc = read_overlay(overlay)?;
    let Some(at) = doc.break_glass.iter().position(|g| g.name == grant) else {
        let open: Vec<&str> = doc.break_glass.iter().map(|g| g.name.as_str()).collect();
        return Err(if open.is_empty() {
            format!("no grant `{grant}`: {} has no grants", overlay.display())
        } else {
            format!("no grant `{grant}`; the grants are: {}", open.join(", "))
        });
    };
    let closed = doc.break_glass.remove(at);
    write_overlay(overlay, &doc)?;
    println!(
        "closed break-glass grant {} (ticket {}; it was {})",
        closed.name,
        closed.ticket,
        grant_state(&closed, now_ms)
    );
    Ok(())
}

fn list(overlay: &Path, format: Format, now_ms: i64) -> Result<(), String> {
    let doc = read_overlay(overlay)?;
    if format == Format::Json {
        println!("{}", grants_json(&doc, now_ms));
        return Ok(());
    }
    if doc.break_glass.is_empty() {
        println!("no break-glass grants in {}", overlay.display());
    }
    // The file may have been edited by hand: no escape sequence reaches the terminal.
    let plain = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    };
    for g in &doc.break_glass {
        let any = |v: &Option<Vec<String>>| v.as_ref().map_or("any".to_owned(), |v| v.join(","));
        let line = format!(
            "{} [{}] {} -> {} methods={} paths={} until {} ticket={} by={} reason={}",
            g.name,
            grant_state(g, now_ms),
            g.from.join(","),
            g.to,
            any(&g.methods),
            any(&g.paths),
            g.expires,
            g.ticket,
            g.opened_by,
            g.reason
        );
        println!("{}", plain(&line));
    }
    Ok(())
}
