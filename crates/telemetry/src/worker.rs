//! The telemetry worker: everything about a decision that is not the answer.
//!
//! The decision path calls [`Telemetry::record`], which only tries to put the
//! event on a bounded queue (a full queue drops the event and counts it; the
//! check is never slowed down). The worker is woken by the first event of a
//! batch only, waits [`BATCH_DELAY`] for more, handles what is queued and
//! writes the batch's audit records with one `write`: one wake-up and one
//! system call per batch, not per check. One task owns the call graph, the
//! anomaly detectors, the rule-usage table and the audit writer, so none of
//! them needs a lock.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::audit::{AuditTarget, AuditWriter};
use hallpass_vocab::DeclaredGraph;

use crate::callgraph::{CallGraph, ObservedEdge, RuleUsage, SourceUsage};
use crate::edges::{Baseline, EdgeKey, EdgeTable, RateSpikeSettings};
use crate::event::UNMATCHED_ROUTE;
use crate::{AnomalyKind, DecisionEvent, DecisionLabel, Metrics};

/// Telemetry settings (see the config reference).
#[derive(Debug, Clone)]
pub struct TelemetrySettings {
    /// Events waiting for the worker; beyond this they are dropped and counted.
    pub queue_capacity: usize,
    /// Edges tracked; beyond this new edges are dropped and counted.
    pub max_edges: usize,
    /// Audit log destination.
    pub audit: AuditTarget,
    /// `telemetry.audit_required`: batches are written as soon as the
    /// worker wakes (no 5 ms batch delay), because a check waits for its
    /// record ([`Telemetry::record_required`]).
    pub audit_required: bool,
    /// Where the baseline is read from and persisted to.
    pub baseline_path: Option<PathBuf>,
    /// How long to learn the baseline when there is none yet.
    pub learning_window: Duration,
    /// Length of a rate window.
    pub rate_window: Duration,
    /// Spike detection.
    pub rate_spike: RateSpikeSettings,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            max_edges: 10_000,
            audit: AuditTarget::Stdout,
            audit_required: false,
            baseline_path: None,
            learning_window: Duration::from_secs(3600),
            rate_window: Duration::from_secs(10),
            rate_spike: RateSpikeSettings::default(),
        }
    }
}

enum Control {
    Snapshot(oneshot::Sender<CallGraph>),
    PolicyLoaded(DeclaredGraph),
    Flush(oneshot::Sender<()>),
    Shutdown(oneshot::Sender<()>),
}

/// How long the worker lets events gather after the first one of a batch
/// wakes it: one wake-up, one pass and one audit `write` per batch instead
/// of per check. Also the most an event waits before the worker sees it.
pub const BATCH_DELAY: Duration = Duration::from_millis(5);
/// Usage-only changes (a rule's or identity's last-match second) are
/// persisted at most this often; a shutdown always persists.
const USAGE_SAVE_INTERVAL_MS: i64 = 60_000;
/// Events handled per pass before the worker looks at its control queue.
const EVENTS_PER_PASS: usize = 4096;

/// The decision path's way to wake the worker: only the first event after
/// a pass notifies it (`pending` turns true); the others just queue.
#[derive(Debug, Default)]
struct Wake {
    pending: AtomicBool,
    notify: tokio::sync::Notify,
}

/// How long after the last failed audit write, with no successful one
/// since, [`Telemetry::audit_failing`] says so. Bounded, so that a sidecar
/// that is not ready (and so gets no traffic to retry with) becomes ready
/// again and finds out with the next record.
pub const AUDIT_FAILING_FOR: Duration = Duration::from_secs(5);

/// Whether the last audit write failed, and when one last failed (Unix ms).
#[derive(Debug, Default)]
struct AuditHealth {
    failing: AtomicBool,
    last_failure_ms: AtomicI64,
}

/// An event on its way to the worker, with the sender waiting for its
/// audit record to be written, if one waits.
struct Queued {
    event: DecisionEvent,
    written: Option<oneshot::Sender<bool>>,
}

/// Handle to the telemetry worker.
#[derive(Debug, Clone)]
pub struct Telemetry {
    events: mpsc::Sender<Queued>,
    wake: Arc<Wake>,
    control: mpsc::Sender<ControlMsg>,
    metrics: Metrics,
    closed: Arc<AtomicBool>,
    health: Arc<AuditHealth>,
}

/// Opaque control message (keeps `Control` private).
pub struct ControlMsg(Control);

impl std::fmt::Debug for ControlMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControlMsg")
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Telemetry {
    /// Start the worker on the current tokio runtime.
    pub fn start(settings: TelemetrySettings, metrics: Metrics) -> (Self, JoinHandle<()>) {
        let (events_tx, events_rx) = mpsc::channel(settings.queue_capacity.max(1));
        let (control_tx, control_rx) = mpsc::channel(64);
        let health = Arc::new(AuditHealth::default());
        let worker = Worker::new(settings, metrics.clone(), health.clone());
        let wake = Arc::new(Wake::default());
        let task = tokio::spawn(worker.run(events_rx, wake.clone(), control_rx));
        let handle = Self {
            events: events_tx,
            wake,
            control: control_tx,
            metrics,
            closed: Arc::new(AtomicBool::new(false)),
            health,
        };
        (handle, task)
    }

    /// Hand an event to the worker without waiting. A full queue drops it
    /// (counted in `hallpass_telemetry_events_dropped_total`).
    pub fn record(&self, event: DecisionEvent) {
        self.enqueue(Queued {
            event,
            written: None,
        });
    }

    /// Hand an event to the worker; the receiver says `true` once its audit
    /// record is written (handed to the OS with `write`), `false` when that
    /// failed. `None` when the queue is full (counted as a drop): the
    /// record will not be written. A dropped sender (the worker stopped or
    /// panicked on it) means not written either.
    pub fn record_required(&self, event: DecisionEvent) -> Option<oneshot::Receiver<bool>> {
        let (tx, rx) = oneshot::channel();
        self.enqueue(Queued {
            event,
            written: Some(tx),
        })
        .then_some(rx)
    }

    fn enqueue(&self, queued: Queued) -> bool {
        if self.events.try_send(queued).is_err() {
            self.metrics.events_dropped.inc();
            return false;
        }
        // The worker never waits on the queue itself (a waiting receiver
        // would be woken by every event): the first event of a batch wakes it.
        if !self.wake.pending.swap(true, Ordering::AcqRel) {
            self.wake.notify.notify_one();
        }
        true
    }

    /// Did the last audit write fail, with none working since, within
    /// [`AUDIT_FAILING_FOR`] of `now_ms` (Unix ms)?
    pub fn audit_failing(&self, now_ms: i64) -> bool {
        let failed = self.health.last_failure_ms.load(Ordering::Relaxed);
        self.health.failing.load(Ordering::Relaxed)
            && now_ms - failed < window_ms(AUDIT_FAILING_FOR)
    }

    /// Tell the worker which rules the current policy declares (without
    /// waiting; a full control queue drops it, and the next reload resends).
    pub fn policy_loaded(&self, declared: DeclaredGraph) {
        let _ = self
            .control
            .try_send(ControlMsg(Control::PolicyLoaded(declared)));
    }

    /// The call graph as of every event queued so far.
    pub async fn snapshot(&self) -> Option<CallGraph> {
        let (tx, rx) = oneshot::channel();
        self.control
            .send(ControlMsg(Control::Snapshot(tx)))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Wait until every event queued so far is processed.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self
            .control
            .send(ControlMsg(Control::Flush(tx)))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// Process what is queued, persist the baseline and stop the worker.
    pub async fn shutdown(&self) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        let (tx, rx) = oneshot::channel();
        if self
            .control
            .send(ControlMsg(Control::Shutdown(tx)))
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
    }

    /// The metrics the worker updates.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}

struct Worker {
    settings: TelemetrySettings,
    metrics: Metrics,
    edges: EdgeTable,
    declared: DeclaredGraph,
    rule_last_match: HashMap<(Arc<str>, Arc<str>), i64>,
    /// Last call of each named identity (a SPIFFE ID label) per destination.
    source_last_seen: HashMap<(Arc<str>, Arc<str>), i64>,
    /// Unix ms usage tracking began (carried across restarts in the baseline).
    tracking_since_ms: i64,
    /// Usage changed since it was last persisted.
    usage_dirty: bool,
    /// Unix ms of the last persist that was for usage only.
    usage_saved_ms: i64,
    audit: Option<AuditWriter>,
    id_prefix: String,
    sequence: u64,
    health: Arc<AuditHealth>,
    /// Senders waiting for the records of this pass to be written.
    waiting: Vec<oneshot::Sender<bool>>,
    /// A write of this pass failed: every waiting sender hears `false`.
    pass_failed: bool,
}

impl Worker {
    fn new(settings: TelemetrySettings, metrics: Metrics, health: Arc<AuditHealth>) -> Self {
        let now = now_ms();
        let (baseline, learning_until) =
            match settings.baseline_path.as_deref().filter(|p| p.exists()) {
                Some(path) => match Baseline::load(path) {
                    // A file saved inside its learning window (the sidecar
                    // restarted while learning) goes on learning until then.
                    Ok(b) => {
                        let until = b.learning_until_ms.filter(|&until| until > now);
                        (b, until)
                    }
                    Err(e) => {
                        // An unreadable baseline is not trusted: learn afresh, and say so.
                        tracing_fallback(&format!(
                            "cannot read the call-path baseline, learning a new one: {e}"
                        ));
                        (
                            Baseline::new(),
                            Some(now + window_ms(settings.learning_window)),
                        )
                    }
                },
                None => (
                    Baseline::new(),
                    Some(now + window_ms(settings.learning_window)),
                ),
            };
        metrics
            .baseline_edges
            .set(i64::try_from(baseline.edges.len()).unwrap_or(i64::MAX));
        // Usage persisted with the baseline survives the restart; without a
        // (readable) file, tracking begins now.
        let tracking_since_ms = baseline.tracking_since_ms.unwrap_or(now);
        metrics.tracking_since.set(tracking_since_ms / 1000);
        let rule_last_match: HashMap<(Arc<str>, Arc<str>), i64> = baseline
            .rules
            .iter()
            .filter(|r| r.last_match_seconds > 0)
            .map(|r| {
                (
                    (
                        Arc::from(r.destination.as_str()),
                        Arc::from(r.rule.as_str()),
                    ),
                    r.last_match_seconds,
                )
            })
            .collect();
        let source_last_seen: HashMap<(Arc<str>, Arc<str>), i64> = baseline
            .sources
            .iter()
            .take(settings.max_edges)
            .map(|u| {
                (
                    (
                        Arc::from(u.source.as_str()),
                        Arc::from(u.destination.as_str()),
                    ),
                    u.last_seen_seconds,
                )
            })
            .collect();
        let edges = EdgeTable::new(settings.max_edges, baseline, learning_until);
        let audit = match AuditWriter::open(settings.audit.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                // Keep trying on every record, so that each lost record is
                // counted in hallpass_audit_log_write_errors_total.
                tracing_fallback(&format!("cannot open the audit log: {e}"));
                Some(AuditWriter::deferred(settings.audit.clone()))
            }
        };
        // Unique enough across restarts and sidecars, without a random source.
        let id_prefix = format!("{:x}{:05x}", now, std::process::id() & 0xfffff);
        Self {
            settings,
            metrics,
            edges,
            declared: DeclaredGraph::default(),
            rule_last_match,
            source_last_seen,
            tracking_since_ms,
            usage_dirty: false,
            usage_saved_ms: now,
            audit,
            id_prefix,
            sequence: 0,
            health,
            waiting: Vec::new(),
            pass_failed: false,
        }
    }

    async fn run(
        mut self,
        mut events: mpsc::Receiver<Queued>,
        wake: Arc<Wake>,
        mut control: mpsc::Receiver<ControlMsg>,
    ) {
        let mut tick = tokio::time::interval(self.settings.rate_window);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        // tokio's clock, so that a paused test clock drives the rate windows.
        let mut last_tick = tokio::time::Instant::now();
        let mut was_learning = self.edges.learning(now_ms());
        loop {
            tokio::select! {
                biased;
                msg = control.recv() => {
                    // Everything queued before the request counts, and is
                    // written to the audit log before the answer.
                    while let Ok(queued) = events.try_recv() {
                        self.handle_queued(queued);
                    }
                    self.flush_audit();
                    // Every handle is gone: nothing more can arrive.
                    let Some(ControlMsg(msg)) = msg else { return };
                    match msg {
                        Control::Snapshot(reply) => { let _ = reply.send(self.snapshot()); }
                        Control::PolicyLoaded(declared) => self.policy_loaded(declared),
                        Control::Flush(reply) => { let _ = reply.send(()); }
                        Control::Shutdown(reply) => {
                            self.persist();
                            let _ = reply.send(());
                            return;
                        }
                    }
                }
                () = wake.notify.notified() => {
                    // Let the batch gather, then take what is queued (a
                    // bounded pass) and write its audit records at once.
                    if self.settings.audit_required {
                        // Checks wait for these records: no delay, but
                        // let the ones arriving right now join the batch.
                        tokio::task::yield_now().await;
                    } else {
                        tokio::time::sleep(BATCH_DELAY).await;
                    }
                    // Acquire: every event queued before its sender saw
                    // `pending` true is visible to the drain below.
                    wake.pending.swap(false, Ordering::AcqRel);
                    let mut handled = 0;
                    while handled < EVENTS_PER_PASS {
                        let Ok(queued) = events.try_recv() else { break };
                        self.handle_queued(queued);
                        handled += 1;
                    }
                    self.flush_audit();
                    if handled == EVENTS_PER_PASS && !wake.pending.swap(true, Ordering::AcqRel) {
                        // More may be queued: another pass, after control.
                        wake.notify.notify_one();
                    }
                }
                _ = tick.tick() => {
                    let elapsed = last_tick.elapsed().as_secs_f64();
                    last_tick = tokio::time::Instant::now();
                    for key in self.edges.close_window(elapsed, &self.settings.rate_spike) {
                        let class = self.edges.data_class(&key);
                        self.metrics.record_anomaly(&key.source, &key.destination, AnomalyKind::RateSpike, class);
                    }
                    let learning = self.edges.learning(now_ms());
                    let now = now_ms();
                    if (was_learning && !learning)
                        || self.edges.take_dirty()
                        || (self.usage_dirty && now - self.usage_saved_ms >= USAGE_SAVE_INTERVAL_MS)
                    {
                        self.persist();
                    }
                    was_learning = learning;
                }
            }
        }
    }

    /// [`Self::handle_guarded`], keeping the sender that waits for the
    /// record until the pass's batch is written.
    fn handle_queued(&mut self, queued: Queued) {
        if self.handle_guarded(&queued.event)
            && let Some(written) = queued.written
        {
            self.waiting.push(written);
        }
        // A panic drops the sender: its check hears "not written".
    }

    /// [`Self::handle`], with a panic counted instead of ending the worker
    /// (and with it every later audit record and anomaly).
    /// Returns whether it was handled.
    fn handle_guarded(&mut self, event: &DecisionEvent) -> bool {
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(event)));
        if handled.is_err() {
            self.metrics.record_panic("telemetry");
        }
        handled.is_ok()
    }

    fn handle(&mut self, event: &DecisionEvent) {
        self.sequence += 1;
        let denied = event.decision != DecisionLabel::Allow;
        let anomaly = |kind| {
            self.metrics.record_anomaly(
                &event.source_label,
                &event.destination,
                kind,
                event.data_class,
            )
        };
        // What the decider knew; the call-history kinds follow below.
        for kind in event.anomalies.kinds() {
            anomaly(kind);
        }
        let key = EdgeKey {
            source: event.source_label.clone(),
            destination: event.destination.clone(),
            route: event
                .route
                .clone()
                .unwrap_or_else(|| Arc::from(UNMATCHED_ROUTE)),
            method: Arc::from(event.method.as_str()),
        };
        let seen = self.edges.observe(
            &key,
            event.decision != DecisionLabel::Deny,
            denied,
            event.time_ms,
        );
        self.edges.note_data_class(&key, event.data_class);
        if seen.new_edge {
            anomaly(AnomalyKind::NewEdge);
        }
        if seen.dropped {
            self.metrics.edges_dropped.inc();
        }
        self.metrics
            .edges
            .set(i64::try_from(self.edges.len()).unwrap_or(i64::MAX));
        // A break-glass allow names its grant, not a rule: it is no use of
        // a permission the policy grants.
        if let (DecisionLabel::Allow, Some(rule), None) =
            (event.decision, &event.rule, &event.break_glass)
        {
            let secs = event.time_ms / 1000;
            let key = (event.destination.clone(), rule.clone());
            // The gauge moves once a second at most: skip its label lookup
            // for every other match.
            if self.rule_last_match.get(&key) != Some(&secs) {
                self.metrics
                    .rule_last_match
                    .with_label_values(&[&event.destination, rule])
                    .set(secs);
                self.rule_last_match.insert(key, secs);
                self.usage_dirty = true;
            }
        }
        // Named callers only: their labels are SPIFFE IDs the policy names,
        // so the table is bounded by the policy (and capped).
        if event.source_label.starts_with("spiffe://") {
            let secs = event.time_ms / 1000;
            let key = (event.source_label.clone(), event.destination.clone());
            let room = self.source_last_seen.len() < self.settings.max_edges;
            match self.source_last_seen.get_mut(&key) {
                Some(last) if *last != secs => {
                    *last = secs;
                    self.usage_dirty = true;
                }
                Some(_) => {}
                None if room => {
                    self.source_last_seen.insert(key, secs);
                    self.usage_dirty = true;
                }
                None => self.metrics.edges_dropped.inc(),
            }
        }
        if let Some(writer) = &mut self.audit {
            let mut buf = [0u8; 64];
            let id = decision_id(&mut buf, &self.id_prefix, self.sequence);
            let lost = writer.append(event, id);
            if lost > 0 {
                self.metrics.audit_write_errors.inc_by(lost);
                self.audit_failed();
            }
        }
    }

    fn audit_failed(&mut self) {
        self.pass_failed = true;
        self.health
            .last_failure_ms
            .store(now_ms(), Ordering::Relaxed);
        self.health.failing.store(true, Ordering::Relaxed);
    }

    /// Write the audit batch; its records are counted as errors if that
    /// fails. Then tell every check waiting on this pass's records whether
    /// they were written.
    fn flush_audit(&mut self) {
        if let Some(writer) = &mut self.audit {
            let wrote = !writer.is_empty();
            let lost = writer.flush();
            if lost > 0 {
                self.metrics.audit_write_errors.inc_by(lost);
                self.audit_failed();
            } else if wrote && !self.pass_failed {
                self.health.failing.store(false, Ordering::Relaxed);
            }
        }
        let written = !self.pass_failed;
        for waiting in self.waiting.drain(..) {
            let _ = waiting.send(written);
        }
        self.pass_failed = false;
    }

    fn policy_loaded(&mut self, declared: DeclaredGraph) {
        // Keep last-match times of rules that still exist; new rules start at 0.
        self.metrics.rule_last_match.reset();
        let mut kept = HashMap::new();
        for edge in &declared.edges {
            let key = (
                Arc::from(edge.destination.as_str()),
                Arc::from(edge.rule.as_str()),
            );
            let last = self.rule_last_match.get(&key).copied().unwrap_or(0);
            self.metrics
                .rule_last_match
                .with_label_values(&[&edge.destination, &edge.rule])
                .set(last);
            kept.insert(key, last);
        }
        self.rule_last_match = kept.into_iter().filter(|(_, t)| *t > 0).collect();
        self.declared = declared;
    }

    fn persist(&mut self) {
        self.metrics
            .baseline_edges
            .set(i64::try_from(self.edges.baseline().edges.len()).unwrap_or(i64::MAX));
        let Some(path) = &self.settings.baseline_path else {
            return;
        };
        self.usage_dirty = false;
        self.usage_saved_ms = now_ms();
        let mut rules: Vec<RuleUsage> = self
            .rule_last_match
            .iter()
            .map(|((destination, rule), &last)| RuleUsage {
                destination: destination.to_string(),
                rule: rule.to_string(),
                last_match_seconds: last,
            })
            .collect();
        rules.sort_by(|a, b| (&a.destination, &a.rule).cmp(&(&b.destination, &b.rule)));
        let sources = self.source_usage();
        let baseline = self.edges.baseline_mut();
        baseline.tracking_since_ms = Some(self.tracking_since_ms);
        baseline.rules = rules;
        baseline.sources = sources;
        if let Err(e) = self.edges.baseline().save(path) {
            tracing_fallback(&format!("cannot save the call-path baseline: {e}"));
        }
    }

    /// The last call of each identity the policy names, per destination, in
    /// a stable order (the baseline file and `/callgraph` both carry it).
    fn source_usage(&self) -> Vec<SourceUsage> {
        let mut sources: Vec<SourceUsage> = self
            .source_last_seen
            .iter()
            .map(|((source, destination), &last)| SourceUsage {
                source: source.to_string(),
                destination: destination.to_string(),
                last_seen_seconds: last,
            })
            .collect();
        sources.sort_by(|a, b| (&a.source, &a.destination).cmp(&(&b.source, &b.destination)));
        sources
    }

    fn snapshot(&self) -> CallGraph {
        let baseline = &self.edges.baseline().edges;
        let mut observed: Vec<ObservedEdge> = self
            .edges
            .iter()
            .map(|(k, s)| ObservedEdge {
                source: k.source.to_string(),
                destination: k.destination.to_string(),
                route: k.route.to_string(),
                method: k.method.to_string(),
                count: s.count,
                allowed: s.allowed,
                denied: s.denied,
                first_seen_ms: s.first_seen_ms,
                last_seen_ms: s.last_seen_ms,
                new: s.new,
                spiking: s.spiking,
                in_baseline: baseline.contains(k),
                ewma_rps: s.ewma_rps,
                data_class: s.data_class,
            })
            .collect();
        observed.sort_by(|a, b| {
            (&a.source, &a.destination, &a.route, &a.method).cmp(&(
                &b.source,
                &b.destination,
                &b.route,
                &b.method,
            ))
        });
        let mut rules: Vec<RuleUsage> = self
            .declared
            .edges
            .iter()
            .map(|e| (e.destination.clone(), e.rule.clone()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|(destination, rule)| {
                let last = self
                    .rule_last_match
                    .get(&(Arc::from(destination.as_str()), Arc::from(rule.as_str())))
                    .copied()
                    .unwrap_or(0);
                RuleUsage {
                    destination,
                    rule,
                    last_match_seconds: last,
                }
            })
            .collect();
        rules.sort_by(|a, b| (&a.destination, &a.rule).cmp(&(&b.destination, &b.rule)));
        let sources = self.source_usage();
        CallGraph {
            generated_at_ms: now_ms(),
            learning: self.edges.learning(now_ms()),
            declared: self.declared.edges.clone(),
            observed,
            rules,
            tracking_since_ms: self.tracking_since_ms,
            sources,
        }
    }
}

/// `<prefix>-<sequence in hex>`, written into `buf` (no allocation per
/// record); the prefix alone if it does not fit (it always does: the
/// prefix is at most 21 characters).
fn decision_id<'b>(buf: &'b mut [u8; 64], prefix: &'b str, sequence: u64) -> &'b str {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(buf.as_mut_slice());
    let written = write!(cursor, "{prefix}-{sequence:x}");
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    match written {
        Ok(()) => buf
            .get(..len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or(prefix),
        Err(_) => prefix,
    }
}

fn window_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn tracing_fallback(message: &str) {
    tracing::error!("{message}");
}
