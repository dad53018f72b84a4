//! `/config` on the admin listener of a running sidecar, over HTTP: the
//! effective settings in the config file's shape, which hallpass itself
//! accepts as a config.

use crate::common;

use common::*;
use hallpass_server::Settings;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_what_the_sidecar_runs_with() {
    let (dir, _ca) = clinical_dir();
    let running = Running::start_ready(config(
        dir.path(),
        "identity:\n  clock_skew_seconds: 45\ntelemetry:\n  audit_log: \"off\"\n",
    ))
    .await;
    let (status, body) = running.get("/config").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    // What the file said, and the defaults it did not.
    assert_eq!(v["identity"]["clock_skew_seconds"], 45);
    assert_eq!(v["telemetry"]["audit_log"], "off");
    assert_eq!(v["policy"]["reload_interval_seconds"], 1);
    assert_eq!(
        v["policy"]["file"],
        dir.path().join("policy.yaml").display().to_string()
    );
    assert_eq!(
        v["trust"]["bundles"][0]["x509"],
        dir.path().join("bundle.pem").display().to_string()
    );
    assert_eq!(v["identity"]["x509_from"], "peer_certificate");
    assert_eq!(v["identity"]["cache_max_entries"], 4096);
    assert_eq!(v["telemetry"]["queue_capacity"], 10_000);
    // The page is itself a config that reads into the same settings.
    let again = Settings::from_yaml(&body, std::iter::empty()).unwrap();
    assert_eq!(serde_json::to_value(&again).unwrap(), v);
    running.stop().await;
}
