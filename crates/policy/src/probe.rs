//! A count of per-rule matching work, kept in debug builds only.
//!
//! A decision must cost the same whatever the number of rules that cannot
//! apply to the caller, denied or allowed (issue 17): one rescan of every
//! rule after a deny once made a denied call 17 times dearer than an allowed
//! one. Time is no test of that, so the work is counted instead: every call
//! of a source, route or gRPC matcher, every rule the evaluator judges and
//! every route hit the index walk gathers for the evaluator to sort adds one to a per-thread counter that tests read through
//! [`matcher_calls`]. A release build has no counter: `count` is empty and
//! [`matcher_calls`] is always 0.

#[cfg(debug_assertions)]
thread_local! {
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Count one matcher call or rule judged (debug builds only).
#[inline(always)]
pub(crate) fn count() {
    #[cfg(debug_assertions)]
    CALLS.with(|c| c.set(c.get().wrapping_add(1)));
}

/// Count `n` route hits gathered from the index (debug builds only): the
/// evaluator's other per-rule work, so a walk that came back with every
/// rule would show even if the rules were not judged one by one.
#[inline(always)]
pub(crate) fn count_hits(n: usize) {
    #[cfg(debug_assertions)]
    CALLS.with(|c| c.set(c.get().wrapping_add(u64::try_from(n).unwrap_or(u64::MAX))));
    #[cfg(not(debug_assertions))]
    let _ = n;
}

/// Matcher calls and rules judged on this thread so far: debug builds only
/// (always 0 in a release build, so a test that relies on it must check
/// `cfg!(debug_assertions)`). Compare two readings around the code under test.
#[doc(hidden)]
pub fn matcher_calls() -> u64 {
    #[cfg(debug_assertions)]
    return CALLS.with(std::cell::Cell::get);
    #[cfg(not(debug_assertions))]
    0
}
