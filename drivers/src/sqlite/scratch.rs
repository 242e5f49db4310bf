//! The scratch directories of `:memory:` engines (a WAL database file in a
//! temporary directory, so readers never wait on a writer). A directory
//! goes with its engine; one whose process was killed (a crash, `kill -9`)
//! would stay for ever, so each is named with its process id, and a new
//! engine removes those of processes that are gone.

use std::path::Path;

const PREFIX: &str = "omnigate-sqlite-";

/// The prefix of this process's scratch directories.
pub(super) fn prefix() -> String {
    format!("{PREFIX}{}-", std::process::id())
}

/// Removes the scratch directories, in the temporary directory, of
/// processes that no longer run (on Linux, where `/proc` says so; a
/// process id in use again keeps its directory, which is only late).
pub(super) fn sweep() {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_process_s_scratch_is_removed_and_a_live_one_s_kept() {
        let tmp = std::env::temp_dir();
        // Process ids above the kernel's pid_max are never alive.
        let gone = tmp.join(format!("{PREFIX}4194305-test"));
        let live = tmp.join(format!("{}test", prefix()));
        std::fs::create_dir_all(&gone).unwrap();
        std::fs::create_dir_all(&live).unwrap();
        sweep();
        assert!(!gone.exists());
        assert!(live.exists());
        std::fs::remove_dir_all(&live).unwrap();
    }
}
