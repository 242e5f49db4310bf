//! The orphan pass of recovery: a prepared PostgreSQL transaction under
//! the log's prefix that no marker or record names was never decided, and
//! is rolled back behind a fence on its deciding engine (see
//! `Decider::fence`).

use super::coordinator::Coordinator;
use super::log::{PartRecord, TxLog};
use crate::router::Router;

impl Coordinator {
    /// Rolls back the prepared transactions under the log's prefix that no
    /// record names and this gateway is not committing. One whose commit
    /// ends between the first reading of the log and this check has
    /// written PREPARED by then (or rolled back): the log is read after the
    /// engine is. On a shared log, a replica may be between its PREPARE and
    /// its PREPARED record: only transactions prepared `takeover_after`
    /// ago are taken.
    pub(super) async fn roll_back_orphans(&self, router: &Router, log: &TxLog) -> u64 {
        let prefix = log.gid_prefix();
        let age = log.orphan_age(self.takeover_after);
        let mut rolled_back = 0;
        // What a deciding engine that cannot hold markers now decided is
        // unknown: nothing is rolled back as undecided meanwhile.
        let deciders = self.deciders(router).await;
        if !deciders.unready.is_empty() {
            tracing::warn!(engines = ?deciders.unready, "prepared transactions are not rolled back as orphans while a deciding engine cannot hold its markers");
            return 0;
        }
        for engine in router.engines() {
            let Ok(gids) = self.step(engine.driver.prepared_ids(&prefix, age)).await else {
                continue;
            };
            let candidates: Vec<String> = gids
                .into_iter()
                .filter(|g| !self.is_committing_gid(&prefix, g))
                .collect();
            if candidates.is_empty() {
                continue;
            }
            // Every record, this gateway's or not (a replica's transaction
            // is not an orphan, only not yet this gateway's to finish), and
            // every marker, read after the engine's prepared transactions.
            let Ok(fresh) = log.in_doubt(std::time::Duration::ZERO).await else {
                continue;
            };
            let mut parts: Vec<PartRecord> = fresh.into_iter().flat_map(|d| d.parts).collect();
            // A deciding engine that cannot be read now does not stop the
            // pass: the fence below, which must be written on every
            // deciding engine, keeps what it may have decided.
            for (_, decider) in &deciders.ready {
                if let Ok(found) = decider.unfinished().await {
                    parts.extend(found.into_iter().flat_map(|m| m.parts));
                }
            }
            let recorded = |gid: &str| {
                parts
                    .iter()
                    .any(|p| matches!(p, PartRecord::Prepared { gid: known, .. } if known == gid))
            };
            'gids: for gid in candidates.into_iter().filter(|g| !recorded(g)) {
                // Fenced first on every deciding engine: a decider whose
                // COMMIT is still under way (slow, or cut by a timeout and
                // landing later) fails on the fence, or the fence finds its
                // decision and the next pass finishes it forward.
                let (named, decided_by) = match gid.rsplit_once('.') {
                    Some((named, decider)) => (named, Some(decider)),
                    None => (gid.as_str(), None),
                };
                let Some(tx) = tx_of_gid(&prefix, named, engine.name()) else {
                    continue;
                };
                // The deciding engine the gid names (only it can have
                // decided); a gid naming none (the log decided, or an
                // earlier version's) is fenced on every deciding engine.
                let named: Vec<_> = deciders
                    .ready
                    .iter()
                    .filter(|(e, _)| decided_by.is_none_or(|d| d == e.name()))
                    .collect();
                if let Some(decider) = decided_by
                    && named.is_empty()
                {
                    tracing::warn!(gid = %gid, decider = %decider, "an undecided prepared transaction names a deciding engine that is not configured: it cannot be fenced, so it is left prepared; resolve it by hand");
                    continue;
                }
                let mut fenced = Vec::new();
                for (entry, decider) in named {
                    match self.step(decider.fence(tx)).await {
                        Ok(true) => fenced.push(decider),
                        outcome => {
                            if let Err(e) = &outcome {
                                tracing::warn!(gid = %gid, engine = %entry.name(), error = %e, "cannot fence an undecided transaction before rolling it back; tried again at the next pass");
                            }
                            // Decided (or not fenced everywhere): the fences
                            // written on the other engines come off again,
                            // so none says "rolled back" of it.
                            for decider in fenced {
                                let _ = self.step(decider.unfence(tx)).await;
                            }
                            continue 'gids;
                        }
                    }
                }
                let rolled = self.step(engine.driver.finish_prepared(&gid, false));
                if matches!(rolled.await, Ok(true)) {
                    tracing::info!(gid = %gid, engine = %engine.name(), "rolled back a prepared transaction no record names (never decided)");
                    rolled_back += 1;
                }
            }
        }
        rolled_back
    }
}

/// The transaction id in global id `gid` of engine `engine`
/// (`{prefix}{tx}-{engine}`).
fn tx_of_gid<'a>(prefix: &str, gid: &'a str, engine: &str) -> Option<&'a str> {
    gid.strip_prefix(prefix)?
        .strip_suffix(engine)?
        .strip_suffix('-')
        .filter(|tx| !tx.is_empty())
}
