//! Test-only failpoints in the cross-engine commit, compiled in only with
//! the `failpoints` feature: a test makes one step fail, or stops the
//! coordinator there as a crash would (nothing after it runs, no rollback
//! is sent: the engines' sessions are dropped as a dying process drops
//! them), then checks what recovery makes of it.

/// The points, in the order the commit passes them.
pub const POINTS: [&str; 7] = [
    "prepare",
    "prepared_record",
    "decide",
    "decided",
    "commit_record",
    "finish",
    "done",
];

/// Not one of [`POINTS`] (a crash there is `decide`'s): with `Fail`, the
/// deciding engine's COMMIT is cut by its step timeout and lands on the
/// engine a moment later, while the coordinator reports the outcome in
/// doubt (a slow synchronous replica, a lock). Recovery must not roll the
/// other parts back meanwhile.
pub const LATE_DECISION: &str = "decide_late";

/// What a failpoint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The step fails (as when its engine or the log refuses it).
    Fail,
    /// The coordinator stops here, as if the process died.
    Stop,
}

/// The failpoints set on one coordinator.
#[derive(Debug, Default)]
pub struct Failpoints {
    #[cfg(feature = "failpoints")]
    set: std::sync::Mutex<std::collections::HashMap<&'static str, Action>>,
}

impl Failpoints {
    /// Sets `point` to `action` (`None` clears it).
    #[cfg(feature = "failpoints")]
    pub fn set(&self, point: &'static str, action: Option<Action>) {
        let mut set = self
            .set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match action {
            Some(action) => set.insert(point, action),
            None => set.remove(point),
        };
    }

    /// What `point` does now, if anything.
    #[cfg(feature = "failpoints")]
    pub(crate) fn hit(&self, point: &'static str) -> Option<Action> {
        self.set
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(point)
            .copied()
    }

    /// Without the feature, nothing.
    #[cfg(not(feature = "failpoints"))]
    #[inline(always)]
    pub(crate) fn hit(&self, _point: &'static str) -> Option<Action> {
        None
    }
}
