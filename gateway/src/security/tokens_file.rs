//! The tokens file's errors, told without its secrets.

/// The keys a tokens file may hold, named in its errors.
const KEYS: &[&str] = &[
    "principals",
    "token_sha256",
    "certificate",
    "engines",
    "dialects",
    "read_only",
    "admin",
    "deny",
    "allow_commands",
    "limits",
    "name",
    "engine",
    "kind",
    "dialect",
    "pattern",
    "concurrent_calls",
    "calls_per_second",
    "burst",
    "max_rows",
    "max_bytes",
    "tx_buffered_statements",
    "tx_buffered_bytes",
];

/// A TOML error of the tokens file without its text: the line number and
/// what is wrong, values hidden. (The toml crate's own message quotes the
/// line, and a token pasted into the file would be logged with it.)
pub(super) fn toml_error(text: &str, err: &toml::de::Error) -> String {
    let line = err.span().map(|span| {
        text.as_bytes()[..span.start.min(text.len())]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    });
    // Quoted text is hidden: serde quotes a value of the wrong type
    // ("…") and an unknown key (`…`), and either may be a pasted token.
    // Backquoted keys the file may hold stay, to say which one is wrong.
    let mut message = String::new();
    let mut quote: Option<(char, String)> = None;
    for c in err.message().chars() {
        match &mut quote {
            Some((open, inside)) if c == *open => {
                let known = *open == '`' && KEYS.contains(&inside.as_str());
                message.push(c);
                message.push_str(if known { inside } else { "…" });
                message.push(c);
                quote = None;
            }
            Some((_, inside)) => inside.push(c),
            None if c == '"' || c == '`' => quote = Some((c, String::new())),
            None => message.push(c),
        }
    }
    let message = message.lines().next().unwrap_or_default().to_owned();
    match line {
        Some(line) => format!("line {line}: {message}"),
        None => message,
    }
}
