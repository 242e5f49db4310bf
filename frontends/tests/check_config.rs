//! `omnigate check-config` finds what it can without connecting: files the
//! config names that are missing or do not parse, and a transaction log
//! that looks like an engine's name but names none.
#![allow(clippy::unwrap_used)]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_omnigate");

/// `omnigate check-config` on `text`: exit code and stderr.
fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnigate.toml");
    std::fs::write(
        &path,
        text.replace("DIR", &dir.path().display().to_string()),
    )
    .unwrap();
    std::fs::write(dir.path().join("garbage.pem"), "not a certificate\n").unwrap();
    let output = Command::new(BIN)
        .arg("check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn missing_or_unreadable_files_fail_the_check() {
    let (code, stderr) = check(
        "[security]\ntokens_file = \"DIR/tokens.toml\"\n\
         [security.tls]\ncert = \"DIR/server.crt\"\nkey = \"DIR/server.key\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("security.tls:"), "{stderr}");
    assert!(stderr.contains("server.crt"), "{stderr}");
    assert!(stderr.contains("tokens.toml"), "{stderr}");

    let (code, stderr) = check(
        "[engines.db]\nkind = \"postgres\"\nurl = \"postgres://u@h/d\"\ntls = \"require\"\n\
         ca_file = \"DIR/garbage.pem\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("engines.db.ca_file:") && stderr.contains("no PEM certificate"),
        "{stderr}"
    );
}

#[test]
fn a_log_name_that_matches_no_engine_is_an_error_with_a_suggestion() {
    let (code, stderr) = check(
        "[transactions]\nlog = \"oders\"\n\
         [engines.orders]\nkind = \"postgres\"\nurl = \"postgres://u@h/d\"\n",
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("did you mean \"orders\"?"), "{stderr}");
}
