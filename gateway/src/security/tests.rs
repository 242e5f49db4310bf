//! The security module's unit tests.
use super::*;

#[test]
fn the_bearer_scheme_is_matched_in_any_case() {
    assert_eq!(bearer_token("Bearer abc"), Some("abc"));
    assert_eq!(bearer_token("BEARER  abc "), Some("abc"));
    assert_eq!(bearer_token("bEaReR abc"), Some("abc"));
    assert_eq!(bearer_token("Basic abc"), None);
    assert_eq!(bearer_token("Bear"), None);
    assert_eq!(bearer_token("Beare\u{e9}abc"), None, "not a char boundary");
}

#[test]
fn a_toml_error_names_its_line_and_never_shows_it() {
    for text in [
        "[principals.a]\nog_secret_token_pasted_here\n",
        "[principals.a]\ntoken_sha256 = og_secret_token_pasted_here\n",
        "[principals.a]\nengines = \"og_secret_token_pasted_here\"\n",
        "[principals.a]\nog_secret_token_pasted_here = 1\n",
    ] {
        let err = toml::from_str::<TokensFile>(text).unwrap_err();
        let shown = toml_error(text, &err);
        assert!(!shown.contains("og_secret"), "{shown}");
        assert!(shown.starts_with("line 2: "), "{shown}");
    }
}

#[test]
fn a_bad_tokens_file_is_reported_once_per_change_and_a_limiter_survives_a_grant_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.toml");
    let hash = tokens::to_hex(&tokens::hash("t"));
    let good = |extra: &str| {
        format!(
            "[principals.a]\ntoken_sha256 = \"{hash}\"\nlimits = {{ concurrent_calls = 1 }}\n{extra}"
        )
    };
    std::fs::write(&path, good("")).unwrap();
    let config = SecurityConfig {
        tokens_file: Some(path.clone()),
        ..SecurityConfig::default()
    };
    let security = Security::new(config, BTreeMap::new()).unwrap();
    let a = security.principals().by_name["a"].clone();
    let held = a.limiter.admit("a").unwrap();
    std::fs::write(&path, "[principals.a]\nog_pasted_secret_token\n").unwrap();
    let err = security.reload_if_changed().unwrap_err();
    assert!(!err.contains("og_pasted"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    for _ in 0..3 {
        assert_eq!(security.reload_if_changed(), Ok(false), "reported once");
    }
    // Fixed, with a grant change: the limiter (one call held) stays.
    std::fs::write(&path, good("read_only = true\n")).unwrap();
    assert_eq!(security.reload_if_changed(), Ok(true));
    let b = security.principals().by_name["a"].clone();
    assert!(b.grant.read_only);
    assert!(b.limiter.admit("a").is_err(), "the held call still counts");
    drop(held);
    b.limiter.admit("a").unwrap();
}

#[test]
fn the_read_only_principals_of_an_engine_are_those_whose_grant_reaches_it() {
    let principal = |read_only: bool, engines: Option<&[&str]>| PrincipalConfig {
        token_sha256: Some(tokens::to_hex(&tokens::hash(&format!(
            "{read_only}{engines:?}"
        )))),
        read_only,
        engines: engines.map(|e| e.iter().map(|&n| n.to_owned()).collect()),
        ..PrincipalConfig::default()
    };
    let principals = BTreeMap::from([
        ("reader".to_owned(), principal(true, None)),
        ("elsewhere".to_owned(), principal(true, Some(&["cache"]))),
        ("writer".to_owned(), principal(false, None)),
    ]);
    let security = Security::new(SecurityConfig::default(), principals).unwrap();
    use omnigate_drivers::Dialect;
    assert_eq!(security.read_only_on("main-db", Dialect::Sql), ["reader"]);
    assert_eq!(
        security.read_only_on("cache", Dialect::Redis),
        ["elsewhere", "reader"]
    );
}
