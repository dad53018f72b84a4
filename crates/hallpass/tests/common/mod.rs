//! Running the built `hallpass` binary the way a user does.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn hallpass(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_hallpass"))
        .args(args)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

pub fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name)
        .display()
        .to_string()
}

pub fn temp_file(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path: PathBuf = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

pub const LAB: &str = "spiffe://hospital.example/ns/clinical/sa/lab-results";
pub const EHR: &str = "spiffe://hospital.example/ns/clinical/sa/ehr-api";
