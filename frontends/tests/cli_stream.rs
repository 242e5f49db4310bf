//! `omnigate exec --stream` end to end: rows are printed as batches arrive
//! in bounded memory, Ctrl-C and `--timeout` keep what was printed; and the
//! CLI's errors that say what to do (quote the statement, which flag).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use omnigate_tests::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_omnigate");

/// Rows 1..=n of `pad` characters each, from SQLite without a table.
fn rows(n: u64, pad: u32) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) \
         SELECT x, hex(zeroblob({})) AS pad FROM c",
        pad / 2
    )
}

struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(BIN)
            .current_dir(dir.path())
            .args(["serve", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
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
            addr: format!("http://{addr}"),
            _dir: dir,
        }
    }

    fn exec(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.args(["exec", "--addr", &self.addr]).args(args);
        command
    }

    /// `omnigate exec ARGS`, its stdout read line by line as it comes.
    fn spawn(&self, args: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
        let mut child = self
            .exec(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        (child, stdout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The most memory (resident, kB) process `pid` has used so far.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn stderr_of(child: &mut Child) -> String {
    let mut text = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

#[test]
fn a_streamed_result_prints_as_it_arrives_in_bounded_memory() {
    let server = Server::start();
    // About 90 MB of table, several times what the CLI may hold.
    let total = 400_000;
    let (mut child, mut stdout) = server.spawn(&["-d", "sql", "--stream", &rows(total, 200)]);
    let mut line = String::new();
    let mut lines = 0u64;
    let mut peak = 0;
    while stdout.read_line(&mut line).unwrap() > 0 {
        lines += 1;
        if lines == total / 2 || lines == total * 9 / 10 {
            // The CLI is still running: what is left does not fit in a pipe.
            peak = peak.max(peak_rss_kb(child.id()));
        }
        if lines == 3 {
            assert!(line.starts_with("1 "), "{line}");
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", stderr_of(&mut child));
    assert_eq!(lines, total + 3, "header, rule, rows, count");
    assert!(
        peak > 0 && peak < 64 * 1024,
        "the CLI used {peak} kB while streaming ~90 MB"
    );
}

#[test]
fn ctrl_c_stops_a_stream_after_whole_lines() {
    let server = Server::start();
    let (mut child, mut stdout) = server.spawn(&[
        "-d",
        "sql",
        "--stream",
        "--batch-size",
        "100",
        &rows(50_000_000, 20),
    ]);
    let mut text = String::new();
    let mut line = String::new();
    for _ in 0..1000 {
        stdout.read_line(&mut line).unwrap();
    }
    omnigate_tests::send_signal(&child, "INT");
    stdout.read_to_string(&mut text).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let printed = 1000 - 2 + text.lines().count() as u64;
    assert!(text.is_empty() || text.ends_with('\n'), "a torn last line");
    let stderr = stderr_of(&mut child);
    assert_eq!(
        stderr,
        format!("error: interrupted: {printed} rows printed before it\n")
    );
}

#[test]
fn a_timeout_keeps_the_rows_printed_and_says_the_time_asked() {
    let server = Server::start();
    let output = server
        .exec(&[
            "-d",
            "sql",
            "--stream",
            "--timeout",
            "2s",
            &rows(50_000_000, 20),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    let printed = stdout.lines().count().saturating_sub(2);
    let expected = if printed == 0 {
        "error: timed out after 2s (--timeout)\n".to_owned()
    } else {
        format!("error: timed out after 2s (--timeout); {printed} rows printed before it\n")
    };
    assert_eq!(stderr, expected);
}

#[test]
fn a_row_limit_names_the_cli_flags() {
    let server = Server::start();
    let output = server
        .exec(&["-d", "sql", "--max-rows", "5", &rows(20, 2)])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success());
    assert!(stderr.contains("pass --stream"), "{stderr}");
    assert!(stderr.contains("--max-rows"), "{stderr}");
    assert!(!stderr.contains("ExecuteStream"), "{stderr}");
}

fn fails(output: Output) -> String {
    assert_eq!(output.status.code(), Some(2));
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn unquoted_statements_and_missing_flags_say_what_to_do() {
    // No gateway needed: these fail before any call.
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let stderr = fails(run(&["exec", "-d", "sql", "SELECT", "1"]));
    assert!(
        stderr.contains(
            "quote the whole statement as one argument, e.g. omnigate exec -d sql 'SELECT 1'"
        ),
        "{stderr}"
    );
    let stderr = fails(run(&["exec", "-d", "redis", "SET", "greeting", "hi"]));
    assert!(stderr.contains("'SET greeting hi'"), "{stderr}");
    let stderr = fails(run(&["describe"]));
    assert!(
        stderr.contains("--target") && stderr.contains("--dialect"),
        "{stderr}"
    );
}
