//! examples/library.rs runs, and is the README's library snippet word for
//! word (so the snippet compiles as written).
#![allow(clippy::unwrap_used)]

#[path = "../../examples/library.rs"]
mod example;

#[test]
fn the_library_example_runs() {
    example::main().unwrap();
}

#[test]
fn the_readme_library_snippet_is_the_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/library.rs")).unwrap();
    let section = readme
        .split("### As a Rust library")
        .nth(1)
        .expect("the README has a section \"As a Rust library\"");
    let snippet = section
        .split("```rust\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("a rust block in it");
    assert_eq!(snippet, example, "copy examples/library.rs into the README");
}
