//! The `omnigate` binary end to end: serve, exec, engines, describe,
//! config errors and SIGTERM.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, TcpStream};

use omnigate_tests::free_port;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_omnigate");

struct Server {
    child: Child,
    addr: SocketAddr,
    /// The server's working directory (its transaction log goes there).
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--listen", &addr.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the server did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server {
            child,
            addr,
            _dir: dir,
        }
    }

    /// `omnigate tx ACTION --addr .. ARGS`.
    fn tx(&self, action: &str, args: &[&str]) -> Output {
        let addr = format!("http://{}", self.addr);
        Command::new(BIN)
            .args(["tx", action, "--addr", &addr])
            .args(args)
            .output()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        let addr = format!("http://{}", self.addr);
        let mut full = vec![args[0], "--addr", &addr];
        full.extend_from_slice(&args[1..]);
        Command::new(BIN).args(&full).output().unwrap()
    }

    fn terminate(mut self) -> Output {
        omnigate_tests::send_signal(&self.child, "TERM");
        let child = std::mem::replace(&mut self.child, Command::new("true").spawn().unwrap());
        child.wait_with_output().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn serves_the_embedded_engines_and_stops_on_sigterm() {
    let server = Server::start(&[]);
    let set = stdout(&server.run(&["exec", "-d", "redis", "SET greeting 'hello world'"]));
    assert_eq!(set, "reply\n-----\nOK\n(1 row)\n");
    let get = stdout(&server.run(&["exec", "-d", "redis", "--json", "GET $1", "greeting"]));
    assert_eq!(
        get,
        "{\"columns\":[{\"name\":\"reply\",\"type\":\"\"}],\"engine\":\"cache\",\"rows\":[[\"hello world\"]],\"rows_affected\":0}\n"
    );

    stdout(&server.run(&[
        "exec",
        "-d",
        "sql",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    ]));
    let insert = stdout(&server.run(&[
        "exec",
        "-d",
        "sql",
        "INSERT INTO t VALUES ($1, $2), ($3, $4)",
        "int:1",
        "ada",
        "int:2",
        "grace h",
    ]));
    assert_eq!(insert, "(2 rows affected)\n");
    let table = stdout(&server.run(&["exec", "-d", "sql", "SELECT id, name FROM t ORDER BY id"]));
    assert_eq!(
        table,
        "id | name\n---+--------\n1  | ada\n2  | grace h\n(2 rows)\n"
    );
    let streamed = stdout(&server.run(&[
        "exec",
        "-d",
        "sql",
        "--stream",
        "--batch-size",
        "1",
        "SELECT id FROM t ORDER BY id",
    ]));
    assert_eq!(streamed, "id\n--\n1\n2\n(2 rows)\n");

    let engines = stdout(&server.run(&["engines"]));
    assert!(
        engines.contains("cache | memory | redis,ts | serving"),
        "{engines}"
    );
    assert!(
        engines.contains("main  | sqlite | sql      | serving"),
        "{engines}"
    );
    let described = stdout(&server.run(&["describe", "-d", "sql"]));
    assert!(described.contains("table | main.t"), "{described}");
    assert!(
        described.contains("INTEGER NOT NULL PRIMARY KEY"),
        "{described}"
    );

    let bad = server.run(&["exec", "-d", "mongo", "find"]);
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("InvalidArgument: unknown dialect \"mongo\""),
        "{stderr}"
    );
    let bad_param = server.run(&["exec", "-d", "sql", "SELECT $1", "int:x"]);
    assert_eq!(bad_param.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad_param.stderr)
            .contains("parameter $1: int: expects a 64-bit integer")
    );

    let stopped = server.terminate();
    assert!(
        stopped.status.success(),
        "SIGTERM is a clean stop: {stopped:?}"
    );
    let log = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        log.contains("shutting down") && log.contains("stopped"),
        "{log}"
    );
    assert!(
        !log.contains("grace h"),
        "parameter values are never logged"
    );
}

#[test]
fn transactions_from_the_command_line() {
    let server = Server::start(&[]);
    stdout(&server.run(&["exec", "-d", "sql", "CREATE TABLE t (v INTEGER)"]));
    let tx = stdout(&server.tx("begin", &[])).trim().to_owned();
    assert_eq!(tx.len(), 36, "a uuid: {tx}");
    stdout(&server.run(&["exec", "--tx", &tx, "-d", "sql", "INSERT INTO t VALUES (1)"]));
    let queued = stdout(&server.run(&["exec", "--tx", &tx, "-d", "redis", "SET k v"]));
    assert!(queued.contains("QUEUED"), "{queued}");
    let committed = stdout(&server.tx("commit", &[&tx]));
    assert_eq!(committed, "committed on: main, cache\n");
    let got = stdout(&server.run(&["exec", "-d", "redis", "GET k"]));
    assert!(got.contains("\nv\n"), "{got}");
    let again = server.tx("rollback", &[&tx]);
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("was committed"), "{stderr}");

    let tx = stdout(&server.tx("begin", &["--json"])).trim().to_owned();
    let id = tx
        .trim_start_matches("{\"tx_id\":\"")
        .trim_end_matches("\"}");
    stdout(&server.run(&["exec", "--tx", id, "-d", "sql", "INSERT INTO t VALUES (2)"]));
    // The operators' view: the open transaction, its state and engines.
    let listed = stdout(&server.tx("list", &[]));
    assert!(listed.starts_with("TX "), "{listed}");
    assert!(
        listed.contains(id) && listed.contains("ACTIVE") && listed.contains("main"),
        "{listed}"
    );
    let shown = stdout(&server.tx("show", &[id]));
    assert!(shown.contains("state:   ACTIVE"), "{shown}");
    let refused = server.tx("resolve", &[id, "--commit"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("its client commits it"),
        "{refused:?}"
    );
    assert_eq!(stdout(&server.tx("rollback", &[id])), "rolled back\n");
    assert_eq!(
        stdout(&server.tx("list", &[])),
        "no transaction is unfinished\n"
    );
    let unknown = server.tx("resolve", &["no-such-tx", "--rollback"]);
    assert_eq!(unknown.status.code(), Some(1));
    let count = stdout(&server.run(&["exec", "-d", "sql", "SELECT count(*) AS n FROM t"]));
    assert!(count.contains("\n1\n"), "{count}");
    let engines = stdout(&server.run(&["engines"]));
    assert!(
        engines.contains(
            "transactions: 0 open, 0 in doubt; since start 2 begun, 1 committed, 1 rolled back"
        ),
        "{engines}"
    );
    drop(server.terminate());
}

#[test]
fn a_bad_config_stops_startup_with_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[engines.db]\nkind = \"sqlite\"\npool_size = 3\n",
    )
    .unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.toml")
            && stderr.contains("pool_size")
            && stderr.contains("[engines.db]"),
        "{stderr}"
    );

    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[engines.db]\nkind = \"sqlite\"\n").unwrap();
    let output = Command::new(BIN)
        .args(["check-config", "--config", good.to_str().unwrap()])
        .output()
        .unwrap();
    let text = stdout(&output);
    assert!(text.contains("ok") && text.contains("db: sqlite"), "{text}");
}

#[test]
fn serves_a_config_file_with_a_sqlite_file_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data.sqlite3");
    let path = dir.path().join("omnigate.toml");
    std::fs::write(
        &path,
        format!(
            "[engines.store]\nkind = \"sqlite\"\npath = {:?}\n",
            db.to_str().unwrap()
        ),
    )
    .unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    stdout(&server.run(&["exec", "-d", "sql", "CREATE TABLE kept (v TEXT)"]));
    stdout(&server.run(&[
        "exec",
        "-d",
        "sql",
        "-t",
        "store",
        "INSERT INTO kept VALUES ($1)",
        "persisted",
    ]));
    assert!(server.terminate().status.success());
    assert!(db.exists(), "the database file was written");

    let again = Server::start(&["--config", path.to_str().unwrap()]);
    let out = stdout(&again.run(&["exec", "-d", "sql", "SELECT v FROM kept"]));
    assert!(out.contains("persisted"), "{out}");
    let redis = again.run(&["exec", "-d", "redis", "PING"]);
    assert_eq!(
        redis.status.code(),
        Some(1),
        "no redis engine is configured"
    );
}

#[test]
fn the_client_reaches_a_gateway_on_its_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("omnigate.sock");
    let path = dir.path().join("omnigate.toml");
    std::fs::write(
        &path,
        format!("[server]\nunix_socket = {:?}\n", socket.to_str().unwrap()),
    )
    .unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    let addr = format!("unix:{}", socket.display());
    let out = Command::new(BIN)
        .args(["exec", "--addr", &addr, "-d", "redis", "PING"])
        .output()
        .unwrap();
    assert!(stdout(&out).contains("PONG"));
    assert!(server.terminate().status.success());
    assert!(!socket.exists(), "the socket is removed at shutdown");
}

#[test]
fn client_commands_say_when_no_gateway_runs() {
    let addr = format!("http://127.0.0.1:{}", free_port());
    let output = Command::new(BIN)
        .args(["engines", "--addr", &addr])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is `omnigate serve` running?"));
}

#[test]
fn the_example_configs_are_valid() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let mut check = Command::new(BIN);
            check.args(["check-config", "--config", path.to_str().unwrap()]);
            if path.ends_with("compose.toml") {
                // check-config reads the files a config names: in the
                // container, docker-compose mounts this one there.
                check.env(
                    "OMNIGATE__SECURITY__TOKENS_FILE",
                    examples.join("tokens.toml"),
                );
            }
            let output = check.output().unwrap();
            assert!(stdout(&output).contains(": ok"), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 1, "examples/ holds config files");
}

#[test]
fn engines_are_drained_and_resumed_from_the_command_line() {
    let server = Server::start(&[]);
    let addr = format!("http://{}", server.addr);
    let engine = |args: &[&str]| {
        Command::new(BIN)
            .args(["engine", args[0], "--addr", &addr])
            .args(&args[1..])
            .output()
            .unwrap()
    };
    let drained = stdout(&engine(&["drain", "cache", "--wait", "5s"]));
    assert!(
        drained.contains("engine cache drained") && drained.contains("(idle)"),
        "{drained}"
    );
    let refused = server.run(&["exec", "-d", "redis", "PING"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("drained"));
    stdout(&engine(&["resume", "cache"]));
    assert!(stdout(&server.run(&["exec", "-d", "redis", "PING"])).contains("PONG"));
}

#[test]
fn sighup_reloads_the_config_file_and_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnigate.toml");
    let before = "[server]\nreload_poll = \"1h\"\n\n[engines.cache]\nkind = \"memory\"\n";
    std::fs::write(&path, before).unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    let hangup = || omnigate_tests::send_signal(&server.child, "HUP");
    let engines = || stdout(&server.run(&["engines"]));
    assert!(!engines().contains("extra"));

    // The file gains an engine and changes a setting read at startup.
    let after = before.replace("[server]\n", "[server]\nhealth_interval = \"9s\"\n")
        + "\n[engines.extra]\nkind = \"sqlite\"\n";
    std::fs::write(&path, after).unwrap();
    hangup();
    let started = Instant::now();
    while !engines().contains("extra") {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = server.run(&["exec", "-d", "sql", "-t", "extra", "SELECT 1"]);
    stdout(&created);

    // A broken file: refused whole, the gateway serves on as it was.
    std::fs::write(&path, "[engines.cache\nkind =").unwrap();
    hangup();
    std::thread::sleep(Duration::from_millis(500));
    assert!(engines().contains("extra"), "the running config stays");

    let log = String::from_utf8(server.terminate().stderr).unwrap();
    assert!(log.contains("config reloaded"), "{log}");
    assert!(log.contains("takes effect after a restart"), "{log}");
    assert!(log.contains("server.health_interval"), "{log}");
    assert!(log.contains("refused whole"), "{log}");
    assert!(log.contains("line 1"), "the error says where: {log}");
}

#[test]
fn serves_on_a_current_thread_runtime_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("omnigate.toml");
    std::fs::write(&path, "[server]\nruntime = \"current-thread\"\n").unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    stdout(&server.run(&["exec", "-d", "redis", "SET k v"]));
    let got = stdout(&server.run(&["exec", "-d", "redis", "GET k"]));
    assert!(got.contains('v'), "{got}");
    let rows = stdout(&server.run(&["exec", "-d", "sql", "SELECT 40 + 2"]));
    assert!(rows.contains("42"), "{rows}");
}
