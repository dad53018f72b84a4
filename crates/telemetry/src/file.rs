//! Writing files that other processes may be watching, or that sit in a
//! directory someone else can write to.
//!
//! A predictable temporary name (`.NAME.tmp-PID`) written with
//! `std::fs::write` follows a symlink planted under that name and overwrites
//! whatever it points at. [`write_atomically`] instead creates the temporary
//! file exclusively (`O_CREAT | O_EXCL`, a random name, mode 0600) in the
//! target's directory, then renames it over the target: the rename replaces
//! a symlink at the target path rather than following it, and readers see
//! the old file or the new one, never half of one.

use std::io::Write;
use std::path::Path;

/// Write `contents` to `path` atomically, never following a symlink planted
/// at the temporary name or at `path`. The directory must exist.
pub fn write_atomically(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    // On disk before the rename makes it visible: a crash leaves the old
    // file, not an empty new one.
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
