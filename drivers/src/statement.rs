//! A statement, the dialect it is written in, and what every statement
//! must satisfy before an engine sees it.

use std::fmt;

use crate::Result;
use crate::Value;

/// The query languages statements are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Dialect {
    /// SQL (PostgreSQL's, or the subset SQLite shares).
    Sql,
    /// Redis commands in redis-cli syntax.
    Redis,
    /// Cypher.
    Cypher,
    /// Time series: line protocol writes, PromQL reads.
    Ts,
}

impl Dialect {
    /// Every dialect, in a stable order.
    pub const ALL: [Dialect; 4] = [Dialect::Sql, Dialect::Redis, Dialect::Cypher, Dialect::Ts];

    /// Its place in [`Dialect::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The dialect's name as clients spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Sql => "sql",
            Dialect::Redis => "redis",
            Dialect::Cypher => "cypher",
            Dialect::Ts => "ts",
        }
    }

    /// Parses a dialect name (case-insensitive).
    pub fn parse(name: &str) -> Option<Dialect> {
        Dialect::ALL
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A statement and its parameters: positional (`$1..$n`, every dialect
/// but Cypher) or named (`$name`, Cypher).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Statement {
    /// The statement text.
    pub text: String,
    /// The parameters, bound to `$1..$n`.
    pub params: Vec<Value>,
    /// Named parameters, bound to `$name` (Cypher).
    pub named: Vec<(String, Value)>,
}

impl Statement {
    /// A statement without parameters.
    pub fn new(text: impl Into<String>) -> Self {
        Statement {
            text: text.into(),
            params: Vec::new(),
            named: Vec::new(),
        }
    }

    /// A command given as its arguments (a Redis command: name first),
    /// each bound whole: `$1 $2 ...`.
    pub fn from_args(args: &[bytes::Bytes]) -> Self {
        let text = (1..=args.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(" ");
        Statement {
            text,
            params: args.iter().map(|a| Value::Bytes(a.clone())).collect(),
            named: Vec::new(),
        }
    }

    /// Adds the next positional parameter.
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.params.push(value.into());
        self
    }

    /// Adds a named parameter (`$name` in Cypher).
    pub fn bind_named(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.named.push((name.into(), value.into()));
        self
    }

    /// Checks what every statement must satisfy on every engine, before
    /// anything is sent: the parameters are of the kind `dialect` uses, no
    /// parameter nests deeper than [`MAX_DEPTH`](crate::MAX_DEPTH), and the
    /// text is not empty and holds no NUL byte. PostgreSQL's protocol and
    /// SQLite's and FalkorDB's parsers end a statement at a NUL, so what
    /// follows it would be silently dropped (`DELETE FROM t\0 WHERE ..`
    /// would delete every row); binary data belongs in a parameter.
    pub fn check(&self, dialect: Dialect) -> Result<()> {
        self.check_param_style(dialect)?;
        if let Some(offset) = self.text.find('\0') {
            return Err(crate::Error::InvalidStatement(crate::EngineError::new(
                "gateway",
                None,
                format!(
                    "the statement holds a NUL byte at byte {offset}: statement text may not \
                     (send binary data as a $n parameter)"
                ),
            )));
        }
        if self.text.trim().is_empty() {
            return Err(crate::Error::InvalidStatement(crate::EngineError::new(
                "gateway",
                None,
                format!("the statement is empty: send one {dialect} statement"),
            )));
        }
        for (i, value) in self.params.iter().enumerate() {
            value
                .check_depth()
                .map_err(|message| crate::Error::param(i + 1, message))?;
        }
        for (name, value) in &self.named {
            value
                .check_depth()
                .map_err(|message| crate::Error::named_param(name, message))?;
        }
        Ok(())
    }

    /// Checks that the parameters are of the kind `dialect` uses: named
    /// for Cypher, positional for the others.
    pub fn check_param_style(&self, dialect: Dialect) -> Result<()> {
        match (dialect, self.named.first()) {
            (Dialect::Cypher, _) if !self.params.is_empty() => Err(crate::Error::param(
                1,
                "cypher takes named parameters ($name, given in named_params), not positional ones",
            )),
            (Dialect::Cypher, _) | (_, None) => Ok(()),
            (_, Some((name, _))) => Err(crate::Error::named_param(
                name,
                format!(
                    "named parameters are for cypher; {dialect} binds positional params to $1..$n"
                ),
            )),
        }
    }
}
