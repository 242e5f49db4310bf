//! Redis-style glob matching (`KEYS`, `SCAN MATCH`, later codec bindings):
//! `*`, `?`, `[abc]`, `[^abc]`, `[a-z]` and `\` escapes, on bytes.

use crate::deadline::{Deadline, Expired};

/// Whether `text` matches the Redis glob `pattern`.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    glob_match_within(pattern, text, &Deadline::none()).unwrap_or(false)
}

/// [`glob_match`] that stops at `deadline`. Like Redis' own matcher it
/// backtracks only to the last `*`, so it takes at most
/// len(pattern) × len(text) steps (never exponential); a 33k-character
/// pattern against a 66k-byte key is two billion steps, which is why the
/// deadline is checked here too.
pub fn glob_match_within(
    pattern: &[u8],
    text: &[u8],
    deadline: &Deadline,
) -> Result<bool, Expired> {
    let (mut p, mut t) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, text index).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        deadline.tick()?;
        if let Some(step) = match_one(pattern, p, text[t]) {
            p = step;
            t += 1;
        } else if pattern.get(p) == Some(&b'*') {
            star = Some((p + 1, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return Ok(false);
        }
    }
    Ok(pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*'))
}

/// If the pattern element at `p` (not `*`) matches `c`, the index after it.
fn match_one(pattern: &[u8], p: usize, c: u8) -> Option<usize> {
    match *pattern.get(p)? {
        b'*' => None,
        b'?' => Some(p + 1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == c).then_some(p + 2),
        b'[' => match_class(pattern, p + 1, c),
        literal => (literal == c).then_some(p + 1),
    }
}

/// Matches a `[...]` class starting after its `[`; returns the index after `]`.
fn match_class(pattern: &[u8], mut p: usize, c: u8) -> Option<usize> {
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        match pattern.get(p) {
            // An unclosed class ends at the pattern's end, as in Redis.
            None => break,
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                matched |= pattern[p + 1] == c;
                p += 2;
            }
            Some(&lo)
                if pattern.get(p + 1) == Some(&b'-')
                    && p + 2 < pattern.len()
                    && pattern[p + 2] != b']' =>
            {
                let hi = pattern[p + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                matched |= (lo..=hi).contains(&c);
                p += 3;
            }
            Some(&other) => {
                matched |= other == c;
                p += 1;
            }
        }
    }
    (matched != negate).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    fn m(p: &str, t: &str) -> bool {
        glob_match(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("user:*", "user:1"));
        assert!(!m("user:*", "session:1"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxxc"));
        assert!(m("a**b", "ab"));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
    }

    #[test]
    fn escapes() {
        assert!(m(r"a\*b", "a*b"));
        assert!(!m(r"a\*b", "axb"));
        assert!(m(r"[\]]", "]"));
    }
}
