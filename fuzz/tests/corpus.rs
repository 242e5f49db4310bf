//! The fuzz targets on stable, as the CI test command runs them: every
//! committed input (`corpus/TARGET/`, and `regressions/TARGET/`, where
//! each crash a fuzzer found is kept) replayed, then a fixed number of
//! deterministic mutations of them per target. A panic names the target
//! and the input (mutations that fail are written to
//! `target/fuzz-failures/` to be replayed).
#![allow(clippy::unwrap_used)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use omnigate_fuzz::TARGETS;

/// Mutations per target: a few seconds each in a debug build.
const MUTATIONS: usize = 1_500;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            found.push((path.clone(), std::fs::read(&path).unwrap()));
        }
    }
    found.sort();
    found
}

/// Runs `target` on `input`; the panic message when it panics.
fn run(target: fn(&[u8]), input: &[u8]) -> Option<String> {
    catch_unwind(AssertUnwindSafe(|| target(input)))
        .err()
        .map(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default()
        })
}

/// Failures are reported together, with their inputs, at the end (the
/// targets' own panics print nothing meanwhile).
fn quiet() {
    std::panic::set_hook(Box::new(|_| {}));
}

fn report(failures: Vec<String>) {
    drop(std::panic::take_hook());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_committed_input_runs_clean() {
    let mut failures = Vec::new();
    for (name, target) in TARGETS {
        let inputs = inputs(name);
        drop(std::panic::take_hook());
        assert!(
            inputs.len() >= 5,
            "target {name} has {} committed inputs; run `cargo run -p omnigate-fuzz --example seed_corpus`",
            inputs.len()
        );
        quiet();
        for (path, input) in inputs {
            if let Some(why) = run(*target, &input) {
                failures.push(format!("{name}: {}: {why}", path.display()));
            }
        }
    }
    report(failures);
}

/// xorshift64*: deterministic, so a failure here fails the same way again.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One of libFuzzer's simple mutations of `input`, or a splice with `other`.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    const INTERESTING: [u8; 10] = [0, 0xFF, 0x7F, 0x80, b'"', b'\'', b'\\', b'$', b'\n', b' '];
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 if !out.is_empty() => {
                let at = at.min(out.len() - 1);
                out[at] ^= 1 << rng.below(8);
            }
            1 => out.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            2 if at < out.len() => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let end = (from + 1 + rng.below(64)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            4 if !out.is_empty() => {
                let from = rng.below(out.len());
                let end = (from + 1 + rng.below(32)).min(out.len());
                let chunk = out[from..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn mutations_of_the_committed_inputs_run_clean() {
    quiet();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
    let mut failures = Vec::new();
    for (t, (name, target)) in TARGETS.iter().enumerate() {
        let inputs = inputs(name);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ t as u64);
        for i in 0..MUTATIONS {
            let input = &inputs[rng.below(inputs.len())].1;
            let other = &inputs[rng.below(inputs.len())].1;
            let mutated = mutate(&mut rng, input, other);
            if let Some(why) = run(*target, &mutated) {
                std::fs::create_dir_all(&dir).unwrap();
                let file = dir.join(format!("{name}-{i}"));
                std::fs::write(&file, &mutated).unwrap();
                failures.push(format!("{name}: {}: {why}", file.display()));
            }
        }
    }
    report(failures);
}
