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
