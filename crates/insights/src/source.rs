//! Where a call graph comes from: a running sidecar's admin endpoint
//! (`GET /callgraph`), a saved `/callgraph` JSON file, or a Prometheus that
//! scrapes the sidecars (see [`crate::prometheus`]). The analyses only see
//! the [`CallGraph`]; several sources are [`merge`]d into one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use hallpass_telemetry::{CallGraph, DeclaredEdge, ObservedEdge, RuleUsage, SourceUsage};
use url::Url;

use crate::InsightsError;
use crate::http::{HttpClient, HttpOptions, endpoint};

/// One place to read a call graph from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A sidecar's admin base URL, `http://127.0.0.1:9902`.
    Admin(Url),
    /// A saved `/callgraph` JSON document.
    State(PathBuf),
    /// A Prometheus base URL that scrapes the sidecars, and optionally the
    /// policy file (for the declared edges).
    Prometheus {
        /// The Prometheus base URL.
        url: Url,
        /// The policy (files or directories, combined), for the declared
        /// edges (Prometheus has none).
        policy: Vec<PathBuf>,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Admin(url) => write!(f, "{url}"),
            Self::State(path) => write!(f, "{}", path.display()),
            Self::Prometheus { url, .. } => write!(f, "{url} (Prometheus)"),
        }
    }
}

impl Source {
    /// Read the call graph (`client` serves the admin and Prometheus URLs).
    pub async fn load(&self, client: &HttpClient) -> Result<CallGraph, InsightsError> {
        let text = match self {
            Self::Prometheus { url, policy } => {
                return crate::prometheus::load(client, url, policy).await;
            }
            Self::Admin(url) => client.get_text(&endpoint(url, "/callgraph")).await?,
            Self::State(path) => {
                std::fs::read_to_string(path).map_err(|source| InsightsError::Read {
                    path: path.clone(),
                    source,
                })?
            }
        };
        serde_json::from_str(&text).map_err(|e| InsightsError::Invalid {
            origin: self.to_string(),
            message: format!("not a hallpass call graph: {e}"),
        })
    }
}

/// Read every source (in order, on a small runtime of its own) and combine
/// them (see [`merge`]).
pub fn load_all(sources: &[Source], options: &HttpOptions) -> Result<CallGraph, InsightsError> {
    // Cheap to build: the system's roots are read at the first HTTPS handshake.
    let client = HttpClient::new(options)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(InsightsError::Runtime)?;
    let graphs = runtime.block_on(async {
        let mut graphs = Vec::new();
        for source in sources {
            graphs.push(source.load(&client).await?);
        }
        Ok::<_, InsightsError>(graphs)
    })?;
    Ok(merge(graphs))
}

/// Combine the graphs of several sidecars: declared edges de-duplicated,
/// observed edges with the same key summed, the latest match of each rule.
pub fn merge(graphs: Vec<CallGraph>) -> CallGraph {
    let mut out = CallGraph {
        generated_at_ms: 0,
        learning: false,
        declared: Vec::new(),
        observed: Vec::new(),
        rules: Vec::new(),
        tracking_since_ms: 0,
        sources: Vec::new(),
    };
    // Conservative: the latest tracking start, and unknown if any is.
    let mut tracking_since: Option<i64> = None;
    let mut first = true;
    let mut sources: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut observed: BTreeMap<(String, String, String, String), ObservedEdge> = BTreeMap::new();
    let mut rules: BTreeMap<(String, String), i64> = BTreeMap::new();
    for graph in graphs {
        out.generated_at_ms = out.generated_at_ms.max(graph.generated_at_ms);
        out.learning |= graph.learning;
        tracking_since = match (first, tracking_since) {
            _ if graph.tracking_since_ms <= 0 => None,
            (true, _) => Some(graph.tracking_since_ms),
            (false, Some(t)) => Some(t.max(graph.tracking_since_ms)),
            (false, None) => None,
        };
        first = false;
        for u in graph.sources {
            let last = sources.entry((u.source, u.destination)).or_insert(0);
            *last = (*last).max(u.last_seen_seconds);
        }
        for d in graph.declared {
            if !out.declared.contains(&d) {
                out.declared.push(d);
            }
        }
        for e in graph.observed {
            let key = (
                e.source.clone(),
                e.destination.clone(),
                e.route.clone(),
                e.method.clone(),
            );
            match observed.get_mut(&key) {
                None => {
                    observed.insert(key, e);
                }
                Some(m) => {
                    m.count += e.count;
                    m.allowed += e.allowed;
                    m.denied += e.denied;
                    m.first_seen_ms = m.first_seen_ms.min(e.first_seen_ms);
                    m.last_seen_ms = m.last_seen_ms.max(e.last_seen_ms);
                    m.new |= e.new;
                    m.spiking |= e.spiking;
                    m.in_baseline |= e.in_baseline;
                    m.ewma_rps += e.ewma_rps;
                }
            }
        }
        for r in graph.rules {
            let last = rules.entry((r.destination, r.rule)).or_insert(0);
            *last = (*last).max(r.last_match_seconds);
        }
    }
    out.observed = observed.into_values().collect();
    out.tracking_since_ms = tracking_since.unwrap_or(0);
    out.sources = sources
        .into_iter()
        .map(|((source, destination), last_seen_seconds)| SourceUsage {
            source,
            destination,
            last_seen_seconds,
        })
        .collect();
    out.rules = rules
        .into_iter()
        .map(|((destination, rule), last_match_seconds)| RuleUsage {
            destination,
            rule,
            last_match_seconds,
        })
        .collect();
    out
}

/// The declared edges of each rule, rules in policy order: (destination,
/// rule name, edges).
pub(crate) fn rules_in_order(graph: &CallGraph) -> Vec<(&str, &str, Vec<&DeclaredEdge>)> {
    let mut out: Vec<(&str, &str, Vec<&DeclaredEdge>)> = Vec::new();
    for d in &graph.declared {
        match out
            .iter_mut()
            .find(|(dest, rule, _)| *dest == d.destination && *rule == d.rule)
        {
            Some((_, _, edges)) => edges.push(d),
            None => out.push((&d.destination, &d.rule, vec![d])),
        }
    }
    out
}
