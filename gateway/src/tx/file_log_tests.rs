//! The file log's tests: what is in doubt across a reopen, torn records,
//! compaction.

use super::*;
use crate::tx::log::PartRecord;

fn prepared(tx: &str) -> Record {
    Record::Prepared {
        at: None,
        tx: tx.into(),
        parts: vec![PartRecord::Prepared {
            engine: "pg".into(),
            gid: format!("omnigate-x-{tx}"),
        }],
    }
}

#[tokio::test]
async fn what_has_no_end_is_in_doubt_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tx.log");
    let log = FileLog::open(&path).unwrap();
    let prefix = log.gid_prefix();
    for record in [
        prepared("a"),
        prepared("b"),
        Record::Commit { tx: "b".into() },
        prepared("c"),
        Record::Commit { tx: "c".into() },
        Record::Done { tx: "c".into() },
        prepared("d"),
        Record::Abort { tx: "d".into() },
    ] {
        log.append(record).await.unwrap();
    }
    let err = FileLog::open(&path).unwrap_err();
    assert!(err.to_string().contains("another gateway"), "{err}");
    drop(log);
    // A crash mid-write leaves a torn line: ignored.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"{\"t\":\"comm")
        .unwrap();
    // The writer task lets go of its handle (and the lock) just after
    // the last append returned.
    let log = (0..200)
        .find_map(|_| {
            FileLog::open(&path).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            })
        })
        .expect("the log reopens once its writer has let go");
    assert_eq!(log.gid_prefix(), prefix, "the log keeps its identity");
    let doubt = log.in_doubt().unwrap();
    let summary: Vec<(&str, bool)> = doubt.iter().map(|d| (d.tx.as_str(), d.committed)).collect();
    assert_eq!(summary, vec![("a", false), ("b", true)]);
    // The torn end was cut at open: the next durable record stands on
    // a line of its own (before, it was glued to the torn one and lost).
    log.append(Record::Commit { tx: "a".into() }).await.unwrap();
    let doubt = log.in_doubt().unwrap();
    assert!(doubt.iter().all(|d| d.committed), "{doubt:?}");
}

#[tokio::test]
async fn a_torn_multibyte_character_leaves_the_log_readable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tx.log");
    let log = FileLog::open(&path).unwrap();
    log.append(prepared("a")).await.unwrap();
    drop(log);
    // Half of "é" (0xC3 0xA9): a kill -9 mid-write of a record naming it.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"{\"t\":\"commit\",\"tx\":\"\xC3").unwrap();
    drop(file);
    let log = (0..200)
        .find_map(|_| {
            FileLog::open(&path).ok().or_else(|| {
                std::thread::sleep(std::time::Duration::from_millis(10));
                None
            })
        })
        .expect("a torn character does not make the log unopenable");
    log.append(Record::Commit { tx: "a".into() }).await.unwrap();
    let doubt = log.in_doubt().unwrap();
    assert_eq!(doubt.len(), 1);
    assert!(doubt[0].committed);
}

#[tokio::test]
async fn compaction_keeps_only_what_is_in_doubt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tx.log");
    let log = FileLog::open(&path).unwrap();
    log.append(prepared("open")).await.unwrap();
    for n in 0..COMPACT_AFTER {
        let tx = format!("t{n}");
        log.append(prepared(&tx)).await.unwrap();
        log.append(Record::Done { tx }).await.unwrap();
    }
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert!(lines < 10, "compacted to {lines} lines");
    let doubt = log.in_doubt().unwrap();
    assert_eq!(doubt.len(), 1);
    assert_eq!(doubt[0].tx, "open");
    log.append(Record::Done { tx: "open".into() })
        .await
        .unwrap();
    assert!(log.in_doubt().unwrap().is_empty());
}
