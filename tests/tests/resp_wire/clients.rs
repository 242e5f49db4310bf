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
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                )
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

        let bench = tokio::task::spawn_blocking(move || {
            std::process::Command::new(tool("redis-benchmark"))
                .args(["-h", "127.0.0.1", "-p", &port, "-a", "app-token"])
                .args(["-t", "get,set", "-n", "2000", "-c", "4", "-q"])
                .output()
                .expect("redis-benchmark runs")
        })
        .await
        .unwrap();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&bench.stdout),
            String::from_utf8_lossy(&bench.stderr)
        );
        assert!(bench.status.success(), "{on}: {out}");
        for test in ["SET: ", "GET: "] {
            assert!(
                out.lines()
                    .any(|l| l.contains(test) && l.contains("requests per second")),
                "{on}: {out}"
            );
        }
        assert!(!out.contains("Error"), "{on}: {out}");
        // Its SETs went through: the key it writes holds its 3-byte value.
        let mut c = connect(addr, Some(("", "app-token")), false).await;
        assert_eq!(
            ok(&mut c, &[b"STRLEN", b"key:__rand_int__"]).await,
            V::Int(3),
            "{on}"
        );
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
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
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
