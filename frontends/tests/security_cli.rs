//! Security end to end through the `omnigate` binary: `omnigate token
//! new`, tokens on the command line, the refusal to listen publicly
//! without principals, and a log that never shows a secret.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command};

use omnigate::security::tokens;
use omnigate_tests::binary::{self, stop};
use omnigate_tests::free_port;
use omnigate_tests::postgres::PgServer;
use omnigate_tests::redis::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_omnigate");

/// `omnigate token new NAME`: the token, and the hash line it printed.
fn new_token(name: &str) -> (String, String) {
    let out = Command::new(BIN)
        .args(["token", "new", name])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find(|l| l.starts_with("og_"))
        .expect("the token line")
        .to_owned();
    let hash = text
        .lines()
        .find_map(|l| l.strip_prefix("token_sha256 = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("the hash line")
        .to_owned();
    assert!(text.contains(&format!("[principals.{name}]")), "{text}");
    (token, hash)
}

fn serve(config: &Path, addr: SocketAddr, log_level: &str) -> Child {
    binary::serve(BIN, config, addr, log_level)
}

/// `omnigate exec` against `addr`, with `token` when given: (success,
/// stdout and stderr).
fn exec(addr: SocketAddr, token: Option<&str>, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(BIN);
    command.args(["exec", "--addr", &format!("http://{addr}")]);
    if let Some(token) = token {
        command.env("OMNIGATE_TOKEN", token);
    }
    let out = command.args(args).output().unwrap();
    let text = omnigate_tests::output_text(&out);
    (out.status.success(), text)
}

#[test]
fn a_new_token_works_from_the_command_line_and_is_stored_as_its_hash() {
    let (token, hash) = new_token("app");
    assert_eq!(tokens::to_hex(&tokens::hash(&token)), hash);
    assert_ne!(new_token("app").0, token, "each token is new");
    let refused = Command::new(BIN)
        .args(["token", "new", "a b"])
        .output()
        .unwrap();
    assert!(!refused.status.success());

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("omnigate.toml");
    std::fs::write(
        &config,
        format!("[principals.app]\ntoken_sha256 = \"{hash}\"\n"),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = serve(&config, addr, "warn");
    let (ok, text) = exec(addr, Some(&token), &["-d", "redis", "SET k v"]);
    assert!(ok, "{text}");
    let (ok, text) = exec(addr, None, &["-d", "redis", "GET k"]);
    assert!(
        !ok && text.to_lowercase().contains("unauthenticated"),
        "{text}"
    );
    let (ok, text) = exec(addr, Some("og_wrong"), &["-d", "redis", "GET k"]);
    assert!(
        !ok && text.to_lowercase().contains("unauthenticated"),
        "{text}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_public_listener_without_principals_needs_allow_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("omnigate.toml");
    std::fs::write(&config, "").unwrap();
    let public = SocketAddr::from(([0, 0, 0, 0], free_port()));
    let refused = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .args(["--listen", &public.to_string()])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("refusing to listen") && said.contains("allow_anonymous"),
        "{said}"
    );

    std::fs::write(&config, "[security]\nallow_anonymous = true\n").unwrap();
    let server = serve(&config, public, "warn");
    let (ok, text) = exec(
        SocketAddr::from(([127, 0, 0, 1], public.port())),
        None,
        &["-d", "redis", "PING"],
    );
    assert!(ok, "{text}");
    let log = stop(server);
    assert!(log.contains("no principals are configured"), "{log}");

    // Principals on a public listener without TLS: it starts, and says
    // that tokens travel in the clear.
    let (_, hash) = new_token("app");
    std::fs::write(
        &config,
        format!("[principals.app]\ntoken_sha256 = \"{hash}\"\n"),
    )
    .unwrap();
    let public = SocketAddr::from(([0, 0, 0, 0], free_port()));
    let server = serve(&config, public, "warn");
    let log = stop(server);
    assert!(log.contains("in the clear"), "{log}");
}

#[test]
fn the_log_never_shows_a_token_a_password_or_a_parameter() {
    const REDIS_PASSWORD: &str = "redis-pw-5f1c9a";
    const PG_PASSWORD: &str = "pg-pw-77e0b2";
    const PARAM: &str = "param-secret-0d3e41";
    const LITERAL: &str = "literal-secret-7a1f";
    let pg = PgServer::start();
    let redis = RedisServer::start_with(&["--requirepass", REDIS_PASSWORD]);
    let (token, hash) = new_token("app");
    let (wrong, _) = new_token("nobody");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("omnigate.toml");
    std::fs::write(
        &config,
        format!(
            "[engines.main-db]\nkind = \"postgres\"\nurl = \"{pg}\"\npassword = \"{PG_PASSWORD}\"\n\n\
             [engines.cache]\nkind = \"redis\"\nurl = \"{redis}\"\npassword = \"{REDIS_PASSWORD}\"\n\n\
             [principals.app]\ntoken_sha256 = \"{hash}\"\n\
             deny = [{{ kind = \"redis\", pattern = '^FLUSHALL' }}]\n\
             limits = {{ max_rows = 1 }}\n",
            pg = pg.url("postgres"),
            redis = redis.url(0),
        ),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = serve(&config, addr, "trace");
    // Read as it comes: at trace level the log fills a pipe's buffer.
    let mut stderr = server.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut log = String::new();
        stderr.read_to_string(&mut log).unwrap();
        log
    });
    let t = Some(token.as_str());
    let calls: &[(Option<&str>, &[&str])] = &[
        (t, &["-d", "sql", "CREATE TABLE t (v int)"]),
        // A parameter of the wrong type, a failing statement with one, a
        // refused rule, a row limit, a bad token.
        (t, &["-d", "sql", "INSERT INTO t VALUES ($1)", PARAM]),
        (
            t,
            &["-d", "sql", "SELECT * FROM missing WHERE v = $1", PARAM],
        ),
        (t, &["-d", "redis", "SET $1 $2", "k", PARAM]),
        (t, &["-d", "redis", "FLUSHALL"]),
        (t, &["-d", "sql", &format!("SELECT '{LITERAL}'")]),
        (
            t,
            &[
                "-d",
                "sql",
                "SELECT * FROM t WHERE v = 'literal-secret-7a1f'",
            ],
        ),
        (t, &["-d", "redis", "INCR $1", "k"]),
        (t, &["-d", "sql", "SELECT generate_series(1, 3)"]),
        (Some(wrong.as_str()), &["-d", "redis", "GET $1", PARAM]),
        (None, &["-d", "redis", "GET k"]),
    ];
    for (token, args) in calls {
        exec(addr, *token, args);
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let log = reader.join().unwrap();
    // The calls reached the gateway and were logged.
    assert!(log.contains("Execute"), "the log was captured: {log}");
    // Each call's span carries the statement's shape, without its values.
    assert!(log.contains("SELECT * FROM t WHERE v = ?"), "{log}");
    for secret in [
        token.as_str(),
        &hash,
        &wrong,
        REDIS_PASSWORD,
        PG_PASSWORD,
        PARAM,
        LITERAL,
    ] {
        assert!(!log.contains(secret), "the log shows a secret:\n{log}");
    }
}

#[test]
fn the_compose_tokens_file_gives_the_documented_demo_token() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tokens.toml");
    let config = omnigate::config::SecurityConfig {
        tokens_file: Some(path),
        ..Default::default()
    };
    let security = omnigate::security::Security::new(config, Default::default()).unwrap();
    let credentials = |authorization| omnigate::security::Credentials {
        authorization: Some(authorization),
        ..Default::default()
    };
    let demo = security
        .authenticate(credentials("Bearer og_compose_demo_token_replace_me"))
        .unwrap()
        .expect("a principal");
    assert_eq!(demo.name, "demo");
    assert!(
        security
            .authenticate(credentials("Bearer og_other"))
            .is_err()
    );
}

#[test]
fn the_command_line_calls_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = omnigate_tests::certs::make(dir.path(), None);
    let (cert, key) = omnigate_tests::certs::client(&ca, "ops-client");
    let config = dir.path().join("omnigate.toml");
    std::fs::write(
        &config,
        format!(
            "[security.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n\n\
             [principals.ops]\ncertificate = \"ops-client\"\n",
            ca.cert.display(),
            ca.key.display(),
            ca.ca.display()
        ),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut server = serve(&config, addr, "warn");
    let call = |extra: &[&str]| {
        let out = Command::new(BIN)
            .args(["exec", "--addr", &format!("https://{addr}")])
            .args(extra)
            .args(["-d", "redis", "PING"])
            .output()
            .unwrap();
        let text = omnigate_tests::output_text(&out);
        (out.status.success(), text)
    };
    let ca_path = ca.ca.display().to_string();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let (ok, text) = call(&["--ca", &ca_path, "--cert", &cert, "--key", &key]);
    assert!(ok && text.contains("PONG"), "{text}");
    let (ok, text) = call(&["--ca", &ca_path]);
    assert!(
        !ok && text.to_lowercase().contains("unauthenticated"),
        "{text}"
    );
    let (ok, text) = call(&[]);
    assert!(!ok && text.contains("--ca"), "{text}");
    server.kill().unwrap();
    server.wait().unwrap();
}
