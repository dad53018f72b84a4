//! The docker-compose demo (`examples/docker-compose`), checked as far as a
//! machine without Docker allows. No container is started; the tools that do
//! run are the real ones:
//!
//! - `envoy --mode validate` on every Envoy config. They take their
//!   certificates over SDS from the SPIRE agent's Unix socket, which does not
//!   exist here. Validation neither connects to it nor resolves the
//!   `STRICT_DNS` hosts, so the files are validated exactly as shipped (from
//!   a scratch working directory). It does not check that the cluster an SDS
//!   source names exists either, so this test checks every cluster reference.
//! - hallpass's own config validation (`Settings::from_yaml`) on every
//!   hallpass config, with the environment the compose file gives each sidecar.
//! - `hallpass policy check` on the policy the sidecars mount.
//! - `promtool check config` on the Prometheus config, with the rules
//!   directory it mounts rewritten to the repository's path.
//! - `dclint` on the compose file, warnings included.
//! - `sh -n` on the shell scripts.
//! - What no tool checks: that each workload has one SPIFFE ID all the way
//!   from its SPIRE registration (`spire/setup.sh`) through the Docker labels,
//!   the Envoy configs (SVID, peer pins, bundles, agent socket) and the
//!   hallpass sidecars to the policy; and that every file the compose file
//!   mounts exists.
//!
//! A missing tool is a failure that says how to install it, never a skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use anyhow::{Context, bail, ensure};
use hallpass_e2e::{hallpass_bin, tool, validate_envoy_config, workspace_root};
use hallpass_server::Settings;
use serde_yaml_ng::Value;

/// Where the hallpass config sits in its container (`serve --config`).
const HALLPASS_CONFIG: &str = "/etc/hallpass/hallpass.yaml";
/// Where each Envoy container reads its config.
const ENVOY_CONFIG: &str = "/etc/envoy/envoy.yaml";
/// The Docker label that SPIRE's docker attestor selects workloads by.
const WORKLOAD_LABEL: &str = "hallpass.workload";

fn demo_dir() -> PathBuf {
    workspace_root().join("examples/docker-compose")
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn read_yaml(path: &Path) -> anyhow::Result<Value> {
    serde_yaml_ng::from_str(&read(path)?)
        .with_context(|| format!("{} is not valid YAML", path.display()))
}

/// Run a command; its output when it exits 0, else an error with the output.
fn run(cmd: &mut Command) -> anyhow::Result<Output> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// The SPIFFE trust domain of an ID.
fn trust_domain(id: &str) -> anyhow::Result<&str> {
    id.strip_prefix("spiffe://")
        .and_then(|rest| rest.split('/').next())
        .filter(|td| !td.is_empty())
        .with_context(|| format!("`{id}` is not a SPIFFE ID"))
}

/// Call `f(key, value)` for every mapping entry in `value`, at any depth.
fn walk<'a>(value: &'a Value, f: &mut impl FnMut(&'a str, &'a Value)) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    f(k, v);
                }
                walk(v, f);
            }
        }
        Value::Sequence(items) => {
            for v in items {
                walk(v, f);
            }
        }
        Value::Tagged(tagged) => walk(&tagged.value, f),
        _ => {}
    }
}

/// A short-syntax volume of a compose service: `source:target[:mode]`.
#[derive(Debug, Clone)]
struct Mount {
    source: String,
    target: String,
}

impl Mount {
    /// A bind mount (a path relative to the compose file), not a named volume.
    fn is_bind(&self) -> bool {
        self.source.starts_with("./") || self.source.starts_with("../")
    }

    /// The host path of a bind mount.
    fn host_path(&self) -> PathBuf {
        demo_dir().join(self.source.trim_start_matches("./"))
    }
}

/// One service of the compose file.
#[derive(Debug)]
struct Service {
    name: String,
    body: Value,
}

impl Service {
    fn text(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    fn label(&self) -> Option<&str> {
        self.body
            .get("labels")
            .and_then(|l| l.get(WORKLOAD_LABEL))
            .and_then(Value::as_str)
    }

    /// `command` or `entrypoint` as a list of words.
    fn words(&self, key: &str) -> Vec<&str> {
        self.body
            .get(key)
            .and_then(Value::as_sequence)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn mounts(&self) -> anyhow::Result<Vec<Mount>> {
        let Some(volumes) = self.body.get("volumes") else {
            return Ok(Vec::new());
        };
        let volumes = volumes
            .as_sequence()
            .with_context(|| format!("{}: volumes is not a list", self.name))?;
        volumes
            .iter()
            .map(|v| {
                let spec = v.as_str().with_context(|| {
                    format!(
                        "{}: only the short volume syntax is checked here",
                        self.name
                    )
                })?;
                let mut parts = spec.split(':');
                match (parts.next(), parts.next()) {
                    (Some(source), Some(target)) => Ok(Mount {
                        source: source.to_owned(),
                        target: target.to_owned(),
                    }),
                    _ => bail!("{}: volume `{spec}` has no target", self.name),
                }
            })
            .collect()
    }

    fn mount_at(&self, target: &str) -> anyhow::Result<Option<Mount>> {
        Ok(self.mounts()?.into_iter().find(|m| m.target == target))
    }

    /// The environment as `(name, value)` pairs (map or `NAME=value` list).
    fn environment(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut env = Vec::new();
        match self.body.get("environment") {
            None => {}
            Some(Value::Mapping(map)) => {
                for (k, v) in map {
                    let k = k.as_str().context("environment name")?;
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => String::new(),
                        _ => bail!("{}: environment {k} is not a scalar", self.name),
                    };
                    env.push((k.to_owned(), v));
                }
            }
            Some(Value::Sequence(items)) => {
                for item in items {
                    let item = item.as_str().context("environment entry")?;
                    let (k, v) = item.split_once('=').unwrap_or((item, ""));
                    env.push((k.to_owned(), v.to_owned()));
                }
            }
            Some(_) => bail!("{}: environment is neither a map nor a list", self.name),
        }
        Ok(env)
    }
}

/// The compose file's services, in file order.
fn services() -> anyhow::Result<Vec<Service>> {
    let compose = read_yaml(&demo_dir().join("docker-compose.yaml"))?;
    let services = compose
        .get("services")
        .and_then(Value::as_mapping)
        .context("docker-compose.yaml has no services")?;
    services
        .iter()
        .map(|(k, v)| {
            Ok(Service {
                name: k.as_str().context("service name")?.to_owned(),
                body: v.clone(),
            })
        })
        .collect()
}

/// One `register SERVER LABEL ID [FEDERATES_WITH]` line of spire/setup.sh.
#[derive(Debug)]
struct Entry {
    server: String,
    label: String,
    id: String,
    federates_with: Option<String>,
}

fn registrations() -> anyhow::Result<Vec<Entry>> {
    let script = read(&demo_dir().join("spire/setup.sh"))?;
    let entries: Vec<Entry> = script
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("register "))
        .map(|rest| {
            let words: Vec<&str> = rest.split_whitespace().collect();
            match words.as_slice() {
                [server, label, id, more @ ..] if more.len() <= 1 => Ok(Entry {
                    server: (*server).to_owned(),
                    label: (*label).to_owned(),
                    id: (*id).to_owned(),
                    federates_with: more.first().map(|s| (*s).to_owned()),
                }),
                _ => bail!("spire/setup.sh: cannot read `register {rest}`"),
            }
        })
        .collect::<anyhow::Result<_>>()?;
    ensure!(!entries.is_empty(), "spire/setup.sh registers no workload");
    Ok(entries)
}

/// The directory of an agent's Workload API socket, from its config template.
fn agent_socket(server: &str) -> anyhow::Result<PathBuf> {
    let conf = read(&demo_dir().join(format!("spire/{server}/agent.conf")))?;
    let path = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("socket_path"))
        .filter_map(|rest| rest.split('"').nth(1))
        .next()
        .with_context(|| format!("spire/{server}/agent.conf has no socket_path"))?;
    Ok(PathBuf::from(path))
}

/// `service` reaches the SPIRE agent of `server` at `socket`: the socket's
/// directory is a volume that the agent (started with `<server>-agent.conf`)
/// mounts at its own socket directory, and the file names match.
fn check_agent_socket(
    services: &[Service],
    service: &Service,
    server: &str,
    socket: &Path,
) -> anyhow::Result<()> {
    let agent_socket = agent_socket(server)?;
    ensure!(
        socket.file_name() == agent_socket.file_name(),
        "{}: socket {} is not the {server} agent's {}",
        service.name,
        socket.display(),
        agent_socket.display()
    );
    let dir = |p: &Path| {
        p.parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default()
    };
    let agent = services
        .iter()
        .find(|s| {
            s.words("command")
                .iter()
                .any(|w| w.ends_with(&format!("/{server}-agent.conf")))
        })
        .with_context(|| format!("no compose service runs the {server} SPIRE agent"))?;
    let agent_volume = agent
        .mount_at(&dir(&agent_socket))?
        .with_context(|| format!("{}: its socket directory is not a volume", agent.name))?;
    let volume = service
        .mount_at(&dir(socket))?
        .with_context(|| format!("{}: {} is not mounted", service.name, dir(socket)))?;
    ensure!(
        volume.source == agent_volume.source,
        "{}: mounts volume {} at {}, but the {server} agent's socket is on {}",
        service.name,
        volume.source,
        dir(socket),
        agent_volume.source
    );
    Ok(())
}

/// What one Envoy config says about identities.
#[derive(Debug, Default)]
struct EnvoyFacts {
    /// Names of the clusters it defines.
    clusters: BTreeSet<String>,
    /// Cluster names it refers to (routes, gRPC services, load assignments).
    cluster_refs: BTreeSet<String>,
    /// SDS names of its own certificates.
    svids: BTreeSet<String>,
    /// SDS names of its validation contexts (bundles).
    bundles: BTreeSet<String>,
    /// Upstream host -> the exact URI SAN it pins.
    peer_pins: BTreeMap<String, String>,
    /// Unix socket paths (`pipe`) of its clusters.
    pipes: BTreeSet<String>,
}

fn envoy_facts(config: &Value) -> EnvoyFacts {
    let mut facts = EnvoyFacts::default();
    let clusters = config
        .get("static_resources")
        .and_then(|s| s.get("clusters"))
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    for cluster in &clusters {
        if let Some(name) = cluster.get("name").and_then(Value::as_str) {
            facts.clusters.insert(name.to_owned());
        }
        let mut host = None;
        let mut pin = None;
        walk(cluster, &mut |k, v| match k {
            "socket_address" => host = v.get("address").and_then(Value::as_str),
            "match_typed_subject_alt_names" => {
                pin = v
                    .as_sequence()
                    .and_then(|s| s.first())
                    .and_then(|m| m.get("matcher"))
                    .and_then(|m| m.get("exact"))
                    .and_then(Value::as_str);
            }
            _ => {}
        });
        if let (Some(host), Some(pin)) = (host, pin) {
            facts.peer_pins.insert(host.to_owned(), pin.to_owned());
        }
    }
    walk(config, &mut |k, v| match k {
        "cluster_name" => {
            if let Some(name) = v.as_str() {
                facts.cluster_refs.insert(name.to_owned());
            }
        }
        "route" => {
            if let Some(name) = v.get("cluster").and_then(Value::as_str) {
                facts.cluster_refs.insert(name.to_owned());
            }
        }
        "tls_certificate_sds_secret_configs" => {
            for secret in v.as_sequence().into_iter().flatten() {
                if let Some(name) = secret.get("name").and_then(Value::as_str) {
                    facts.svids.insert(name.to_owned());
                }
            }
        }
        "validation_context_sds_secret_config" => {
            if let Some(name) = v.get("name").and_then(Value::as_str) {
                facts.bundles.insert(name.to_owned());
            }
        }
        "pipe" => {
            if let Some(path) = v.get("path").and_then(Value::as_str) {
                facts.pipes.insert(path.to_owned());
            }
        }
        _ => {}
    });
    facts
}

/// The compose services that run Envoy, with their config files.
fn envoy_services(services: &[Service]) -> anyhow::Result<Vec<(&Service, PathBuf)>> {
    let mut found = Vec::new();
    for service in services {
        if let Some(mount) = service.mount_at(ENVOY_CONFIG)? {
            found.push((service, mount.host_path()));
        }
    }
    Ok(found)
}

/// The compose services that run hallpass, with their config files.
fn hallpass_services(services: &[Service]) -> anyhow::Result<Vec<(&Service, PathBuf)>> {
    let mut found = Vec::new();
    for service in services {
        let command = service.words("command");
        let is_hallpass = command.first() == Some(&"serve")
            && command
                .windows(2)
                .any(|w| w == ["--config", HALLPASS_CONFIG]);
        if is_hallpass {
            let mount = service
                .mount_at(HALLPASS_CONFIG)?
                .with_context(|| format!("{}: {HALLPASS_CONFIG} is not mounted", service.name))?;
            found.push((service, mount.host_path()));
        }
    }
    Ok(found)
}

#[test]
fn every_envoy_config_passes_envoy_validate() -> anyhow::Result<()> {
    let cwd = tempfile::tempdir()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(demo_dir().join("envoy"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    ensure!(
        !files.is_empty(),
        "no Envoy configs in examples/docker-compose/envoy"
    );
    let services = services()?;
    let mounted: BTreeSet<PathBuf> = envoy_services(&services)?
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    for file in &files {
        ensure!(
            mounted.contains(file),
            "{} is not used by any compose service",
            file.display()
        );
        validate_envoy_config(file, cwd.path())?;
        let facts = envoy_facts(&read_yaml(file)?);
        let missing: Vec<&String> = facts.cluster_refs.difference(&facts.clusters).collect();
        ensure!(
            missing.is_empty(),
            "{}: refers to clusters it does not define: {missing:?}",
            file.display()
        );
    }
    Ok(())
}

#[test]
fn every_hallpass_config_passes_hallpass_validation_with_its_compose_environment()
-> anyhow::Result<()> {
    let services = services()?;
    let entries = registrations()?;
    let sidecars = hallpass_services(&services)?;
    ensure!(
        !sidecars.is_empty(),
        "no hallpass sidecar in the compose file"
    );
    let prometheus = read(&demo_dir().join("prometheus/prometheus.yml"))?;
    for (service, config) in sidecars {
        let env = service.environment()?;
        let settings = Settings::from_yaml(&read(&config)?, env)
            .with_context(|| format!("{}: {}", service.name, config.display()))?;
        ensure!(
            settings.warnings.is_empty(),
            "{}: {:?}",
            service.name,
            settings.warnings
        );
        let policy = service
            .mount_at(
                &settings
                    .policy_file
                    .as_ref()
                    .with_context(|| format!("{}: no policy.file", service.name))?
                    .display()
                    .to_string(),
            )?
            .with_context(|| format!("{}: the policy file is not mounted", service.name))?;
        ensure!(
            policy.host_path().is_file(),
            "{}: policy {} does not exist",
            service.name,
            policy.source
        );
        let endpoint = settings
            .workload_api
            .as_deref()
            .with_context(|| format!("{}: no Workload API", service.name))?;
        let socket = endpoint
            .strip_prefix("unix://")
            .or_else(|| endpoint.strip_prefix("unix:"))
            .with_context(|| format!("{}: `{endpoint}` is not a Unix socket", service.name))?;
        // The agent of the trust domain SPIRE registers this workload in.
        let label = service
            .label()
            .with_context(|| format!("{}: hallpass without {WORKLOAD_LABEL}", service.name))?;
        let server = &entries
            .iter()
            .find(|e| e.label == label)
            .with_context(|| format!("{}: {label} is not registered", service.name))?
            .server;
        check_agent_socket(&services, service, server, Path::new(socket))?;
        ensure!(
            settings.workload_id.is_some(),
            "{}: no workload.id (HALLPASS_WORKLOAD_ID)",
            service.name
        );
        // Prometheus scrapes the sidecar under its pod's name.
        let pod = service
            .text("network_mode")
            .and_then(|m| m.strip_prefix("service:"))
            .with_context(|| format!("{}: not in a pod (network_mode)", service.name))?;
        ensure!(
            settings.admin_listen.ip().is_unspecified(),
            "{}: admin listens on {}, which Prometheus cannot reach",
            service.name,
            settings.admin_listen
        );
        let target = format!("\"{pod}:{}\"", settings.admin_listen.port());
        ensure!(
            prometheus.contains(&target),
            "prometheus.yml does not scrape {target} ({})",
            service.name
        );
    }
    Ok(())
}

#[test]
fn the_mounted_policy_passes_hallpass_policy_check() -> anyhow::Result<()> {
    let services = services()?;
    let mut policies = BTreeSet::new();
    for (service, _) in hallpass_services(&services)? {
        let policy = service
            .mount_at("/etc/hallpass/policy.yaml")?
            .with_context(|| format!("{}: no policy mounted", service.name))?;
        policies.insert(policy.host_path());
    }
    ensure!(!policies.is_empty(), "no policy mounted");
    let hallpass = hallpass_bin()?;
    for policy in policies {
        run(Command::new(&hallpass)
            .args(["policy", "check"])
            .arg(&policy))?;
    }
    Ok(())
}

#[test]
fn the_prometheus_config_passes_promtool() -> anyhow::Result<()> {
    let promtool = tool("promtool")?;
    let services = services()?;
    let prometheus = services
        .iter()
        .find(|s| s.name == "prometheus")
        .context("no prometheus service")?;
    let config = prometheus
        .mount_at("/etc/prometheus/prometheus.yml")?
        .context("prometheus.yml is not mounted")?;
    let rules = prometheus
        .mount_at("/etc/prometheus/rules")?
        .context("the rules directory is not mounted")?;
    // The rule files are named by their path in the container: point them at
    // the repository's copies, which is what the container mounts.
    let rules_dir = std::fs::canonicalize(rules.host_path())?;
    let text = read(&config.host_path())?.replace(
        "/etc/prometheus/rules/",
        &format!("{}/", rules_dir.display()),
    );
    ensure!(
        !text
            .lines()
            .any(|l| !l.trim_start().starts_with('#') && l.contains("/etc/prometheus")),
        "prometheus.yml refers to container paths this test does not map"
    );
    let rule_files = serde_yaml_ng::from_str::<Value>(&text)?
        .get("rule_files")
        .and_then(Value::as_sequence)
        .map_or(0, Vec::len);
    ensure!(rule_files > 0, "prometheus.yml loads no rule files");
    let dir = tempfile::tempdir()?;
    let copy = dir.path().join("prometheus.yml");
    std::fs::write(&copy, text)?;
    let out = run(Command::new(promtool).args(["check", "config"]).arg(&copy))?;
    // promtool also parses every rule file, and fails on a missing one.
    let report = String::from_utf8_lossy(&out.stdout);
    ensure!(
        report.contains(&format!("SUCCESS: {rule_files} rule files found")),
        "expected all {rule_files} rule files to be checked:\n{report}"
    );
    Ok(())
}

#[test]
fn the_compose_file_passes_dclint() -> anyhow::Result<()> {
    let dclint = tool("dclint")?;
    let dir = demo_dir();
    run(Command::new(dclint)
        .current_dir(&dir)
        .args([
            "--config",
            ".dclintrc.yaml",
            "--max-warnings",
            "0",
            "--color",
            "false",
        ])
        .arg("docker-compose.yaml"))?;
    Ok(())
}

#[test]
fn the_shell_scripts_parse() -> anyhow::Result<()> {
    for script in ["spire/setup.sh", "traffic/play.sh"] {
        run(Command::new("sh").arg("-n").arg(demo_dir().join(script)))?;
    }
    Ok(())
}

#[test]
fn every_file_the_compose_file_mounts_exists() -> anyhow::Result<()> {
    for service in services()? {
        for mount in service.mounts()? {
            if mount.is_bind() {
                ensure!(
                    mount.host_path().exists(),
                    "{}: {} does not exist",
                    service.name,
                    mount.source
                );
            }
        }
        if let Some(home) = service
            .body
            .get("environment")
            .and_then(|e| e.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"))
            .and_then(Value::as_str)
        {
            let mount = service
                .mounts()?
                .into_iter()
                .find(|m| home.starts_with(&format!("{}/", m.target)))
                .with_context(|| {
                    format!("{}: {home} is not in a mounted directory", service.name)
                })?;
            let file = mount
                .host_path()
                .join(home.trim_start_matches(&format!("{}/", mount.target)));
            ensure!(
                file.is_file(),
                "{}: {} does not exist",
                service.name,
                file.display()
            );
        }
    }
    Ok(())
}

#[test]
fn every_image_the_compose_file_builds_has_its_dockerfile() -> anyhow::Result<()> {
    for service in services()? {
        let Some(build) = service.body.get("build") else {
            continue;
        };
        let context = build
            .get("context")
            .and_then(Value::as_str)
            .with_context(|| format!("{}: build without context", service.name))?;
        let dockerfile = build
            .get("dockerfile")
            .and_then(Value::as_str)
            .unwrap_or("Dockerfile");
        let path = demo_dir().join(context).join(dockerfile);
        ensure!(
            path.is_file(),
            "{}: {} does not exist",
            service.name,
            path.display()
        );
        // A named build target must be a stage of that Dockerfile.
        if let Some(target) = build.get("target").and_then(Value::as_str) {
            let text = std::fs::read_to_string(&path)?;
            let stages: Vec<&str> = text
                .lines()
                .filter(|l| l.to_ascii_uppercase().starts_with("FROM "))
                .filter_map(|l| l.split_whitespace().last())
                .collect();
            ensure!(
                stages.contains(&target),
                "{}: target {target} is not a stage of {} ({stages:?})",
                service.name,
                path.display()
            );
        }
    }
    Ok(())
}

#[test]
fn each_workload_has_one_identity_from_spire_to_the_policy() -> anyhow::Result<()> {
    let services = services()?;
    let entries = registrations()?;
    let by_label: BTreeMap<&str, &Entry> = entries.iter().map(|e| (e.label.as_str(), e)).collect();
    ensure!(
        by_label.len() == entries.len(),
        "spire/setup.sh registers a label twice"
    );

    // Every labelled container is registered, and every registration is used.
    let mut used = BTreeSet::new();
    for service in &services {
        if let Some(label) = service.label() {
            ensure!(
                by_label.contains_key(label),
                "{}: label {WORKLOAD_LABEL}={label} has no SPIRE entry in spire/setup.sh",
                service.name
            );
            used.insert(label);
        }
    }
    for entry in &entries {
        ensure!(
            used.contains(entry.label.as_str()),
            "spire/setup.sh registers {}, which no container carries",
            entry.label
        );
    }

    // Envoy: its SVID is its entry's ID; its bundles are ones SPIRE gives it;
    // it pins each upstream to that workload's ID; it reaches its own agent.
    for (service, config) in envoy_services(&services)? {
        let label = service
            .label()
            .with_context(|| format!("{}: Envoy without {WORKLOAD_LABEL}", service.name))?;
        let entry = by_label[label];
        let facts = envoy_facts(&read_yaml(&config)?);
        ensure!(
            facts.svids == BTreeSet::from([entry.id.clone()]),
            "{}: SDS certificates {:?}, but SPIRE issues {}",
            config.display(),
            facts.svids,
            entry.id
        );
        let mut allowed = BTreeSet::from([
            "ALL".to_owned(),
            "ROOTCA".to_owned(),
            format!("spiffe://{}", trust_domain(&entry.id)?),
        ]);
        allowed.extend(entry.federates_with.clone());
        for bundle in &facts.bundles {
            ensure!(
                allowed.contains(bundle),
                "{}: asks SDS for bundle {bundle}, which {} does not get (federates with {:?})",
                config.display(),
                entry.id,
                entry.federates_with
            );
        }
        for (host, pin) in &facts.peer_pins {
            let peer = by_label.get(host.as_str()).with_context(|| {
                format!(
                    "{}: upstream {host} is no registered workload",
                    config.display()
                )
            })?;
            ensure!(
                *pin == peer.id,
                "{}: pins {host} to {pin}, but SPIRE issues {}",
                config.display(),
                peer.id
            );
        }
        ensure!(
            facts.pipes.len() == 1,
            "{}: expected one agent socket, found {:?}",
            config.display(),
            facts.pipes
        );
        for pipe in &facts.pipes {
            check_agent_socket(&services, service, &entry.server, Path::new(pipe))?;
        }
    }

    // hallpass: the destination it protects is its entry's ID.
    let mut protected = BTreeSet::new();
    for (service, _) in hallpass_services(&services)? {
        let label = service
            .label()
            .with_context(|| format!("{}: hallpass without {WORKLOAD_LABEL}", service.name))?;
        let id = service
            .environment()?
            .into_iter()
            .find(|(k, _)| k == "HALLPASS_WORKLOAD_ID")
            .map(|(_, v)| v)
            .with_context(|| format!("{}: no HALLPASS_WORKLOAD_ID", service.name))?;
        ensure!(
            id == by_label[label].id,
            "{}: HALLPASS_WORKLOAD_ID {id}, but SPIRE issues {}",
            service.name,
            by_label[label].id
        );
        protected.insert(id);
    }

    // The policy: every destination it names has a sidecar, and it accepts
    // every trust domain the demo registers.
    let (sidecar, _) = hallpass_services(&services)?
        .into_iter()
        .next()
        .context("no hallpass sidecar")?;
    let policy = sidecar
        .mount_at("/etc/hallpass/policy.yaml")?
        .context("no policy mounted")?;
    let policy = read_yaml(&policy.host_path())?;
    let destinations: BTreeSet<String> = policy
        .get("workloads")
        .and_then(Value::as_mapping)
        .context("the policy has no workloads")?
        .keys()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    let unprotected: Vec<&String> = destinations.difference(&protected).collect();
    ensure!(
        unprotected.is_empty(),
        "policy destinations without a hallpass sidecar in the demo: {unprotected:?}"
    );
    let accepted: BTreeSet<&str> = policy
        .get("trust_domains")
        .and_then(Value::as_sequence)
        .context("the policy has no trust_domains")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for entry in &entries {
        let td = trust_domain(&entry.id)?;
        ensure!(
            accepted.contains(td),
            "the policy does not accept trust domain {td}"
        );
    }
    Ok(())
}
