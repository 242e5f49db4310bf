//! The memory engine's keyspace: typed values, expiry (lazy on access and
//! periodic through an index ordered by deadline).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

use bytes::Bytes;

/// A Redis value.
#[derive(Debug, Clone)]
pub(crate) enum Data {
    Str(Bytes),
    Hash(HashMap<Bytes, Bytes>),
    List(VecDeque<Bytes>),
    Set(HashSet<Bytes>),
    ZSet(ZSet),
}

impl Data {
    /// The name `TYPE` reports.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Data::Str(_) => "string",
            Data::Hash(_) => "hash",
            Data::List(_) => "list",
            Data::Set(_) => "set",
            Data::ZSet(_) => "zset",
        }
    }

    fn is_empty_collection(&self) -> bool {
        match self {
            Data::Str(_) => false,
            Data::Hash(h) => h.is_empty(),
            Data::List(l) => l.is_empty(),
            Data::Set(s) => s.is_empty(),
            Data::ZSet(z) => z.len() == 0,
        }
    }
}

/// A score with the total order Redis sorts by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Score(pub(crate) f64);

impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A sorted set: members ordered by (score, member).
#[derive(Debug, Clone, Default)]
pub(crate) struct ZSet {
    scores: HashMap<Bytes, f64>,
    ordered: BTreeSet<(Score, Bytes)>,
}

impl ZSet {
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets a member's score; returns whether the member is new.
    pub(crate) fn insert(&mut self, member: Bytes, score: f64) -> bool {
        let old = self.scores.insert(member.clone(), score);
        if let Some(old) = old {
            self.ordered.remove(&(Score(old), member.clone()));
        }
        self.ordered.insert((Score(score), member));
        old.is_none()
    }

    pub(crate) fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove_entry(member) {
            Some((member, score)) => self.ordered.remove(&(Score(score), member)),
            None => false,
        }
    }

    /// Members in (score, member) order.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&Bytes, f64)> {
        self.ordered.iter().map(|(s, m)| (m, s.0))
    }
}

#[derive(Debug)]
struct Entry {
    data: Data,
    expires_at: Option<Instant>,
}

/// All keys of the memory engine's one database.
#[derive(Debug, Default)]
pub(crate) struct Keyspace {
    entries: HashMap<Bytes, Entry>,
    /// Keys with a deadline, ordered by it, for periodic eviction.
    deadlines: BTreeSet<(Instant, Bytes)>,
}

impl Keyspace {
    /// Removes `key` if its deadline has passed (lazy expiry).
    fn expire_if_due(&mut self, key: &[u8], now: Instant) {
        let due =
            matches!(self.entries.get(key), Some(Entry { expires_at: Some(at), .. }) if *at <= now);
        if due {
            self.remove(key);
        }
    }

    /// The live value at `key`.
    pub(crate) fn get(&mut self, key: &[u8], now: Instant) -> Option<&Data> {
        self.expire_if_due(key, now);
        self.entries.get(key).map(|e| &e.data)
    }

    /// The live value at `key`, to change in place (keeps its deadline).
    pub(crate) fn get_mut(&mut self, key: &[u8], now: Instant) -> Option<&mut Data> {
        self.expire_if_due(key, now);
        self.entries.get_mut(key).map(|e| &mut e.data)
    }

    /// The value at `key`, created by `create` when absent.
    pub(crate) fn get_or_insert_with(
        &mut self,
        key: &Bytes,
        now: Instant,
        create: impl FnOnce() -> Data,
    ) -> &mut Data {
        self.expire_if_due(key, now);
        &mut self
            .entries
            .entry(key.clone())
            .or_insert_with(|| Entry {
                data: create(),
                expires_at: None,
            })
            .data
    }

    /// Stores `data` at `key`, replacing any value; drops its deadline
    /// unless `keep_ttl`.
    pub(crate) fn insert(&mut self, key: Bytes, data: Data, keep_ttl: bool, now: Instant) {
        self.expire_if_due(&key, now);
        let expires_at = match self.entries.get(&key) {
            Some(old) if keep_ttl => old.expires_at,
            Some(old) => {
                if let Some(at) = old.expires_at {
                    self.deadlines.remove(&(at, key.clone()));
                }
                None
            }
            None => None,
        };
        self.entries.insert(key, Entry { data, expires_at });
    }

    /// Deletes `key`; returns whether it existed.
    pub(crate) fn remove(&mut self, key: &[u8]) -> bool {
        match self.entries.remove_entry(key) {
            Some((key, entry)) => {
                if let Some(at) = entry.expires_at {
                    self.deadlines.remove(&(at, key));
                }
                self.shrink_if_sparse();
                true
            }
            None => false,
        }
    }

    /// Gives back the table's room once it is mostly empty (keys deleted
    /// after a spike), as Redis resizes its dict: under a tenth full, to
    /// twice its keys. Amortised: the next shrink needs as many deletes
    /// again.
    fn shrink_if_sparse(&mut self) {
        let (len, capacity) = (self.entries.len(), self.entries.capacity());
        if capacity > 4096 && len * 10 < capacity {
            self.entries.shrink_to(len * 2);
        }
    }

    /// Deletes `key` if it holds an empty collection, as Redis does.
    pub(crate) fn remove_if_empty(&mut self, key: &[u8]) {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.data.is_empty_collection())
        {
            self.remove(key);
        }
    }

    /// The deadline of a live key: `None` if absent, `Some(None)` if it has none.
    pub(crate) fn deadline(&mut self, key: &[u8], now: Instant) -> Option<Option<Instant>> {
        self.expire_if_due(key, now);
        self.entries.get(key).map(|e| e.expires_at)
    }

    /// Sets or clears the deadline of an existing key.
    pub(crate) fn set_deadline(&mut self, key: &[u8], at: Option<Instant>) {
        let Some((key, entry)) = self.entries.get_key_value(key) else {
            return;
        };
        let key = key.clone();
        if let Some(old) = entry.expires_at {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(at) = at {
            self.deadlines.insert((at, key.clone()));
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.expires_at = at;
        }
    }

    /// Removes every key whose deadline has passed; returns how many.
    pub(crate) fn evict_expired(&mut self, now: Instant) -> usize {
        let mut evicted = 0;
        while let Some((at, _)) = self.deadlines.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.deadlines.pop_first() {
                self.entries.remove(&key);
                evicted += 1;
            }
        }
        if evicted > 0 {
            self.shrink_if_sparse();
        }
        evicted
    }

    /// Live keys (expired ones are evicted first).
    pub(crate) fn keys(&mut self, now: Instant) -> impl Iterator<Item = &Bytes> {
        self.evict_expired(now);
        self.entries.keys()
    }

    /// The number of live keys.
    pub(crate) fn len(&mut self, now: Instant) -> usize {
        self.evict_expired(now);
        self.entries.len()
    }

    /// The number of keys with a deadline.
    pub(crate) fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    /// Deletes every key.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.deadlines.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn expired_keys_vanish_lazily_and_periodically() {
        let mut ks = Keyspace::default();
        let now = Instant::now();
        ks.insert(
            Bytes::from_static(b"a"),
            Data::Str(Bytes::from_static(b"1")),
            false,
            now,
        );
        ks.insert(
            Bytes::from_static(b"b"),
            Data::Str(Bytes::from_static(b"2")),
            false,
            now,
        );
        ks.set_deadline(b"a", Some(now + Duration::from_millis(10)));
        ks.set_deadline(b"b", Some(now + Duration::from_millis(10)));
        assert!(ks.get(b"a", now).is_some());
        let later = now + Duration::from_millis(11);
        assert!(ks.get(b"a", later).is_none(), "lazy expiry on access");
        assert_eq!(ks.volatile_len(), 1);
        assert_eq!(ks.evict_expired(later), 1, "periodic eviction finds b");
        assert_eq!(ks.len(later), 0);
        assert_eq!(ks.volatile_len(), 0);
    }

    #[test]
    fn insert_drops_deadline_unless_kept() {
        let mut ks = Keyspace::default();
        let now = Instant::now();
        let key = Bytes::from_static(b"k");
        ks.insert(key.clone(), Data::Str(Bytes::new()), false, now);
        ks.set_deadline(&key, Some(now + Duration::from_secs(5)));
        ks.insert(key.clone(), Data::Str(Bytes::new()), true, now);
        assert!(matches!(ks.deadline(&key, now), Some(Some(_))));
        ks.insert(key.clone(), Data::Str(Bytes::new()), false, now);
        assert_eq!(ks.deadline(&key, now), Some(None));
        assert_eq!(ks.volatile_len(), 0);
    }

    #[test]
    fn zset_orders_by_score_then_member() {
        let mut z = ZSet::default();
        assert!(z.insert(Bytes::from_static(b"b"), 1.0));
        assert!(z.insert(Bytes::from_static(b"a"), 1.0));
        assert!(z.insert(Bytes::from_static(b"c"), 0.5));
        assert!(!z.insert(Bytes::from_static(b"c"), 2.0));
        let order: Vec<_> = z.iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(order, [&b"a"[..], b"b", b"c"]);
        assert!(z.remove(b"a"));
        assert_eq!(z.len(), 2);
    }
}
