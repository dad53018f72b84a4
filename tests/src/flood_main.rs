//! `hallpass-flood`: the identity flood as its own process (see
//! `hallpass_e2e::flood`). Prints one JSON line with what it saw.
//!
//! Usage: hallpass-flood --authz http://127.0.0.1:PORT --certs FILE
//!                       [--checks N] [--rate CHECKS_PER_SEC] [--workers N]
//!
//! `--checks` defaults to one per certificate.

use anyhow::{Context, bail};
use hallpass_e2e::flood;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut authz, mut certs, mut rate, mut workers) = (None, None, None, 32usize);
    let mut checks = None;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--authz" => authz = Some(value()?),
            "--certs" => certs = Some(value()?),
            "--rate" => {
                rate = Some(value()?.parse::<f64>().context("--rate")?).filter(|r| *r > 0.0)
            }
            "--workers" => workers = value()?.parse().context("--workers")?,
            "--checks" => checks = Some(value()?.parse::<usize>().context("--checks")?),
            other => bail!("unknown argument {other}"),
        }
    }
    let authz = authz.context("--authz is required")?;
    let certs = flood::read_certs(std::path::Path::new(&certs.context("--certs is required")?))?;
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let checks = checks.unwrap_or(certs.len());
            flood::run(authz, certs, checks, workers, rate).await
        })?;
    println!("{}", result.to_json());
    Ok(())
}
