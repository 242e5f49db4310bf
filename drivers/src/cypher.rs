//! What the Cypher engines share: parameter names and schema changes.

use crate::{Error, Result};

/// Checks a named parameter's name: a Cypher identifier
/// (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn check_param_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::named_param(
            name,
            "a parameter name is a letter or _ followed by letters, digits or _",
        ))
    }
}

/// Whether a Cypher statement changes indexes or constraints, so cached
/// schema metadata must go.
pub fn is_schema_change(statement: &str) -> bool {
    let words: Vec<String> = statement
        .split_whitespace()
        .take(3)
        .map(str::to_ascii_uppercase)
        .collect();
    let first = words.first().map(String::as_str);
    let second = words.get(1).map(String::as_str);
    matches!(
        (first, second),
        (
            Some("CREATE" | "DROP"),
            Some("INDEX" | "CONSTRAINT" | "FULLTEXT" | "VECTOR" | "RANGE")
        ) | (Some("CREATE"), Some("OR"))
            | (Some("DROP"), _)
    )
}

/// Checks that a database (graph) the request names is one the engine
/// lets requests choose: its default, or a name matching one of `allowed`
/// (globs, e.g. `tenant_*`).
pub fn choose_database<'a>(
    kind: &'static str,
    default: &'a str,
    allowed: &[String],
    requested: Option<&'a str>,
) -> Result<&'a str> {
    match requested {
        None => Ok(default),
        Some(name) if name == default => Ok(default),
        Some(name)
            if allowed
                .iter()
                .any(|p| crate::glob::glob_match(p.as_bytes(), name.as_bytes())) =>
        {
            Ok(name)
        }
        Some(_) => Err(Error::PermissionDenied(crate::EngineError::new(
            kind,
            None,
            format!(
                "this engine does not let requests choose that {}: allow it in the engine's `databases` setting",
                if kind == "falkordb" {
                    "graph"
                } else {
                    "database"
                }
            ),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers() {
        assert!(check_param_name("name_1").is_ok());
        assert!(check_param_name("_x").is_ok());
        for bad in ["", "1a", "a b", "a'", "a=1", "$a"] {
            assert!(check_param_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn index_and_constraint_statements_change_the_schema() {
        assert!(is_schema_change("CREATE INDEX FOR (p:P) ON (p.name)"));
        assert!(is_schema_change("drop constraint c"));
        assert!(!is_schema_change("CREATE (n:P {name: 'x'})"));
        assert!(!is_schema_change("MATCH (n) RETURN n"));
    }

    #[test]
    fn only_allowed_databases_may_be_chosen() {
        let allowed = vec!["tenant_*".to_owned()];
        assert_eq!(
            choose_database("falkordb", "g", &allowed, None).unwrap(),
            "g"
        );
        assert_eq!(
            choose_database("falkordb", "g", &allowed, Some("tenant_a")).unwrap(),
            "tenant_a"
        );
        let err = choose_database("falkordb", "g", &allowed, Some("other")).unwrap_err();
        assert!(err.to_string().contains("databases"), "{err}");
    }
}
