//! The Python client scripts (`tests/python/`), run with the project's
//! `.venv` (where `scripts/test.sh` installs their packages).

use std::path::Path;

/// Runs `tests/python/SCRIPT` with `args` off the async runtime; it must
/// exit 0 and print `ok` last. A missing package is said by name
/// (`packages`, for the message), as is a missing `.venv`.
pub async fn run_client_script(script: &str, args: Vec<String>, packages: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".venv/bin/python");
    let script = root.join("tests/python").join(script);
    let hint = format!("install the PyPI packages {packages} into .venv (./scripts/test.sh does)");
    let out = {
        let hint = hint.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(&python)
                .arg(&script)
                .args(&args)
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}: {hint}", python.display()))
        })
        .await
        .expect("the script's task")
    };
    let said = crate::output_text(&out);
    assert!(!said.contains("No module named"), "{said}\n{hint}");
    assert!(
        out.status.success() && said.trim_end().ends_with("ok"),
        "{said}"
    );
}
