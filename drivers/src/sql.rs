//! Helpers for the `sql` dialect shared by SQL engines.

/// Whether a SQL statement changes the schema (CREATE, ALTER, DROP), so
/// cached schema metadata must be dropped. Leading comments are skipped.
pub fn is_schema_change(statement: &str) -> bool {
    let mut rest = statement.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after
                .split_once('\n')
                .map_or("", |(_, tail)| tail)
                .trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .split_once("*/")
                .map_or("", |(_, tail)| tail)
                .trim_start();
        } else {
            break;
        }
    }
    let keyword: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
    ["CREATE", "ALTER", "DROP"]
        .iter()
        .any(|k| keyword.eq_ignore_ascii_case(k))
}

#[cfg(test)]
mod tests {
    use super::is_schema_change;

    #[test]
    fn finds_ddl_after_comments() {
        assert!(is_schema_change("create table t (a int)"));
        assert!(is_schema_change("  -- note\n /* x */ DROP TABLE t"));
        assert!(is_schema_change("ALTER TABLE t ADD b int"));
        assert!(!is_schema_change("SELECT 'CREATE'"));
        assert!(!is_schema_change("INSERT INTO created VALUES (1)"));
        assert!(!is_schema_change("-- only a comment"));
    }
}
