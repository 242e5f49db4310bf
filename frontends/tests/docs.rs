//! The documents point at things that exist: relative links in the README,
//! BENCHMARKS.md and docs/design.md name files of the repository, and the
//! README's sections that others cite are there.
#![allow(clippy::unwrap_used)]

use std::path::Path;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[test]
fn relative_links_name_files_that_exist() {
    for doc in ["README.md", "BENCHMARKS.md", "docs/design.md"] {
        let path = root().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let dir = path.parent().unwrap();
        for link in text.split("](").skip(1) {
            let target = link.split(')').next().unwrap();
            if target.contains("://") || target.starts_with('#') {
                continue;
            }
            let file = target.split('#').next().unwrap();
            assert!(
                dir.join(file).exists(),
                "{doc} links to {target}, which does not exist"
            );
        }
        assert!(
            !text.contains("DESIGN.md"),
            "{doc} cites DESIGN.md: it is docs/design.md"
        );
    }
}

#[test]
fn cited_readme_sections_exist() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    for cited in compose.split("(README, \"").skip(1) {
        let section = cited.split('"').next().unwrap();
        assert!(
            readme
                .lines()
                .any(|l| l.starts_with('#') && l.ends_with(section)),
            "docker-compose.yml cites the README section {section:?}, which does not exist"
        );
    }
}
