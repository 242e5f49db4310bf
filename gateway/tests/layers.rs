//! The core's layering, checked: nothing in it names a front end or a
//! transport (the crate boundary keeps that: `omnigate-frontends` is above
//! this crate, and the gRPC and HTTP server stacks are not in its
//! dependency tree), and inside it each module imports only modules of
//! lower layers, so data flows one way.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

/// The core's top-level modules, lowest first. A module may import a
/// module of a lower layer only (or itself).
const LAYERS: &[&[&str]] = &[
    &["error"],
    &["codec"],
    &["engines"],
    &["config"],
    &["security", "router", "cache"],
    &["tx"],
    &["gateway"],
    &["metrics"],
    &["lib"],
];

fn layer(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|layer| layer.contains(&module))
        .unwrap_or_else(|| panic!("module {module} has no layer in tests/layers.rs: add it"))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules `code` names through `crate::`.
fn imports(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap();
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let group = group.split('}').next().unwrap();
                for item in group.split(',') {
                    let name = item.trim().split("::").next().unwrap().trim();
                    if !name.is_empty() {
                        found.push(name.to_owned());
                    }
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        }
    }
    found
}

#[test]
fn each_core_module_imports_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str();
        let module = first.to_str().unwrap().trim_end_matches(".rs");
        let code = std::fs::read_to_string(file).unwrap();
        for import in imports(&code) {
            // Items of lib.rs's re-exports (crate::Gateway, ...) are not
            // modules; the layers name modules.
            if import.is_empty() || import.starts_with(char::is_uppercase) {
                continue;
            }
            if import != module && layer(&import) >= layer(module) {
                upward.push(format!("{} imports crate::{import}", relative.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layers (lowest first: {LAYERS:?}):\n  {}",
        upward.join("\n  ")
    );
}

#[test]
fn the_core_names_no_front_end() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in &files {
        let code = std::fs::read_to_string(file).unwrap();
        for name in ["tonic", "hyper::server", "omnigate_frontends", "clap"] {
            assert!(
                !code.contains(&format!("{name}::")),
                "{} names {name}: front ends and transports live in omnigate-frontends",
                file.display()
            );
        }
    }
}

#[test]
fn no_server_stack_in_the_cores_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = std::process::Command::new(cargo)
        .args([
            "tree",
            "-p",
            "omnigate",
            "-e",
            "normal,features",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8(output.stdout).unwrap();
    for line in tree.lines() {
        let crate_name = line.split_whitespace().next().unwrap_or("");
        assert!(
            !crate_name.starts_with("tonic") && !crate_name.starts_with("axum"),
            "the core depends on {line}: a gRPC stack belongs to omnigate-frontends"
        );
        assert!(
            !(line.starts_with("hyper ") && line.contains("feature \"server\"")),
            "the core's tree has an HTTP server ({line}): it belongs to omnigate-frontends"
        );
    }
}
