//! The Redis project's own clients through the front end.

use omnigate_tests::redis::tool;

use super::{Backend, V, connect, gateway, ok, principals};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_and_redis_benchmark_work_through_the_front_end() {
    for backend in Backend::both() {
        let on = backend.name();
        let mut config = backend.config();
        config.principals = principals();
        let (_gw, addr) = gateway(config).await;
        let port = addr.port().to_string();
        // The clients block: they run beside the runtime that serves them.
        let cli = {
            let port = port.clone();
            move |args: &[&str]| {
                let out = std::process::Command::new(tool("redis-cli"))
                    .args(["-h", "127.0.0.1", "-p", &port, "--no-auth-warning"])
                    .args(args)
                    .output()
                    .expect("redis-cli runs");
                omnigate_tests::output_text(&out)
            }
        };
        let said = tokio::task::spawn_blocking(move || {
            [
                cli(&["-a", "app-token", "SET", "cli:k", "a b"]),
                cli(&["--user", "app", "--pass", "app-token", "GET", "cli:k"]),
                cli(&["GET", "cli:k"]),
                cli(&["-3", "-a", "app-token", "HELLO", "3"]),
                cli(&["-a", "reader-token", "SET", "cli:k", "c"]),
            ]
        })
        .await
        .unwrap();
        assert_eq!(said[0].trim(), "OK", "{on}: {said:?}");
        assert_eq!(said[1].trim(), "a b", "{on}: {said:?}");
        assert!(said[2].contains("NOAUTH"), "{on}: {said:?}");
        assert!(
            said[3].contains("proto") && said[3].contains('3'),
            "{on}: {said:?}"
        );
        assert!(said[4].contains("NOPERM"), "{on}: {said:?}");

        // Mass insertion: redis-cli --pipe sends the whole file without
        // waiting, and counts the replies.
        let pipe_port = port.clone();
        let piped = tokio::task::spawn_blocking(move || {
            let mut input = String::new();
            for i in 0..10_000 {
                input.push_str(&format!("SET mass:{i} {i}\r\n"));
            }
            let mut child = std::process::Command::new(tool("redis-cli"))
                .args(["-h", "127.0.0.1", "-p", &pipe_port, "--no-auth-warning"])
                .args(["-a", "app-token", "--pipe"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("redis-cli runs");
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input.as_bytes()).unwrap();
            drop(stdin);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap();
        let out = String::from_utf8_lossy(&piped.stdout).into_owned()
            + &String::from_utf8_lossy(&piped.stderr);
        assert!(piped.status.success(), "{on}: {out}");
        assert!(out.contains("errors: 0, replies: 10000"), "{on}: {out}");
        let mut c = connect(addr, Some(("", "app-token")), false).await;
        assert_eq!(
            ok(&mut c, &[b"GET", b"mass:9999"]).await,
            V::BulkString(b"9999".to_vec())
        );

        // GET, SET, LPUSH and INCR from 50 clients, unpipelined and 16
        // deep (100,000 calls of each unpipelined is the bench's run; here
        // 20,000 keep the test short).
        for (pipeline, calls) in [("1", "20000"), ("16", "100000")] {
            let port = port.clone();
            let bench = tokio::task::spawn_blocking(move || {
                std::process::Command::new(tool("redis-benchmark"))
                    .args(["-h", "127.0.0.1", "-p", &port, "-a", "app-token"])
                    .args(["-t", "get,set,lpush,incr", "-P", pipeline])
                    .args(["-c", "50", "-n", calls, "-q"])
                    .output()
                    .expect("redis-benchmark runs")
            })
            .await
            .unwrap();
            let out = omnigate_tests::output_text(&bench);
            assert!(bench.status.success(), "{on} -P {pipeline}: {out}");
            for test in ["SET: ", "GET: ", "LPUSH: ", "INCR: "] {
                assert!(
                    out.lines()
                        .any(|l| l.contains(test) && l.contains("requests per second")),
                    "{on} -P {pipeline}: {out}"
                );
            }
            assert!(!out.contains("Error"), "{on} -P {pipeline}: {out}");
        }
        // Its writes went through: the key its SETs write holds its 3-byte
        // value, and its INCRs counted every call of both runs.
        assert_eq!(
            ok(&mut c, &[b"STRLEN", b"key:__rand_int__"]).await,
            V::Int(3),
            "{on}"
        );
        assert_eq!(
            ok(&mut c, &[b"GET", b"counter:__rand_int__"]).await,
            V::BulkString(b"120000".to_vec()),
            "{on}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_works_through_the_front_end_in_resp2_and_resp3() {
    for backend in Backend::both() {
        let on = backend.name();
        let mut config = backend.config();
        config.principals = principals();
        let (_gw, addr) = gateway(config).await;
        let args = [
            addr.ip().to_string(),
            addr.port().to_string(),
            "app-token".into(),
            on.into(),
        ];
        omnigate_tests::python::run_client_script("resp_clients.py", args.to_vec(), "redis").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_reaches_the_front_end_over_tls_only() {
    let dir = tempfile::tempdir().unwrap();
    let certs = omnigate_tests::certs::make(dir.path(), None);
    let mut config = Backend::Memory.config();
    config.principals = principals();
    config.security.tls = Some(omnigate::config::TlsConfig {
        cert: certs.cert.clone(),
        key: certs.key.clone(),
        client_ca: None,
        client_name: omnigate::config::ClientName::SubjectCn,
    });
    let mut frontend = omnigate::config::RedisFrontendConfig::new(super::loopback(), "cache");
    frontend.tls = true;
    config.frontends.redis = Some(frontend);
    let (_gw, addr) = gateway(config).await;
    let port = addr.port().to_string();
    let ca = certs.ca.display().to_string();
    let said = tokio::task::spawn_blocking(move || {
        let cli = |tls: bool, args: &[&str]| {
            let mut command = std::process::Command::new(tool("redis-cli"));
            command.args(["-h", "127.0.0.1", "-p", &port, "--no-auth-warning"]);
            if tls {
                command.args(["--tls", "--cacert", &ca, "--sni", "localhost"]);
            }
            let out = command.args(args).output().expect("redis-cli runs");
            omnigate_tests::output_text(&out)
        };
        [
            cli(true, &["-a", "app-token", "SET", "tls:k", "v"]),
            cli(true, &["-a", "app-token", "GET", "tls:k"]),
            cli(false, &["-a", "app-token", "GET", "tls:k"]),
        ]
    })
    .await
    .unwrap();
    assert_eq!(said[0].trim(), "OK", "{said:?}");
    assert_eq!(said[1].trim(), "v", "{said:?}");
    // In the clear: no Redis reply, only a closed connection.
    assert_ne!(said[2].trim(), "v", "{said:?}");
}

#[test]
fn redis_tls_without_a_certificate_is_a_config_error() {
    let text = "[frontends.redis]\nlisten = \"127.0.0.1:0\"\ntarget = \"cache\"\ntls = true\n";
    let err = omnigate::Config::parse(text, &std::collections::BTreeMap::new()).unwrap_err();
    assert!(err.to_string().contains("[security.tls]"), "{err}");
}
