//! Panics reach the log as one structured error event.

/// Route panics to the log (`tracing`) instead of raw text on stderr: the
/// place in the code, and the message only when it is a fixed string. A
/// formatted message could carry request data, which never goes into a log
/// line. A check whose decision panics is still answered (an
/// `internal_error` deny, see `hallpass_panics_total`).
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let message = info
            .payload()
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("(withheld: a formatted message may carry request data)");
        tracing::error!(%location, message, "panic");
    }));
}
