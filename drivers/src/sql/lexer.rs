//! The one lexer of SQL text the gateway reads (never executes): a
//! statement's words, with comments (`--` to the end of the line, nested
//! `/* */`), string literals (`'..'`, `E'..'`, dollar-quoted) and
//! punctuation (`;` included) skipped, as PostgreSQL's lexer skips them.
//! What a statement is (its first keyword), whether it changes a pooled
//! session, whether it lifts read-only: all read it from here, so no
//! comment or separator can hide a word from one check and not another.

/// Where `needle` first occurs in `bytes` at or after `from`.
fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

/// The words of a statement, as PostgreSQL's lexer sees them: identifiers, keywords, quoted identifiers
/// (their content) and `$n` parameters, without comments, string
/// literals (`'..'`, `E'..'`, dollar-quoted) and punctuation, as slices
/// of the text (compare them with `eq_ignore_ascii_case`; nothing is
/// allocated: this runs on every PostgreSQL call). Works on bytes, so no
/// input can split a character.
pub struct Words<'a> {
    bytes: &'a [u8],
    i: usize,
    /// The next literal is an `E'..'` one: a backslash escapes in it (in
    /// others it does not, `standard_conforming_strings` being on).
    escapes: bool,
}

/// Consumes, from `chars`, a block comment whose opening `/*` was just
/// read, through its closing `*/` (or the end): nested `/* */` count, as
/// PostgreSQL's lexer counts them. For readers that walk a statement's
/// characters to rewrite it rather than read its words.
pub fn skip_block_comment(chars: &mut impl Iterator<Item = char>) {
    let (mut depth, mut last) = (1, ' ');
    for c in chars {
        match (last, c) {
            ('/', '*') => (depth, last) = (depth + 1, ' '),
            ('*', '/') => {
                depth -= 1;
                last = ' ';
                if depth == 0 {
                    return;
                }
            }
            _ => last = c,
        }
    }
}

/// The words of `text` (see [`Words`]).
pub fn words(text: &str) -> Words<'_> {
    Words {
        bytes: text.as_bytes(),
        i: 0,
        escapes: false,
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let bytes = self.bytes;
        let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        while self.i < bytes.len() {
            let i = self.i;
            let b = bytes[i];
            let next = bytes.get(i + 1).copied();
            if b == b'-' && next == Some(b'-') {
                // A line comment ends at a newline or a carriage return,
                // as PostgreSQL's lexer ends it.
                self.i = bytes[i..]
                    .iter()
                    .position(|c| matches!(c, b'\n' | b'\r'))
                    .map_or(bytes.len(), |n| i + n + 1);
            } else if b == b'/' && next == Some(b'*') {
                // Comments nest in PostgreSQL.
                let mut depth = 0usize;
                let mut j = i;
                while j < bytes.len() {
                    if bytes[j] == b'/' && bytes.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if bytes[j] == b'*' && bytes.get(j + 1) == Some(&b'/') {
                        depth = depth.saturating_sub(1);
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                self.i = j;
            } else if b == b'\'' {
                // '' inside is a quote; a backslash escapes in E'..'.
                let escapes = std::mem::take(&mut self.escapes);
                let mut j = i + 1;
                while j < bytes.len() {
                    match bytes[j] {
                        b'\\' if escapes => j += 2,
                        b'\'' if bytes.get(j + 1) == Some(&b'\'') => j += 2,
                        b'\'' => {
                            j += 1;
                            break;
                        }
                        _ => j += 1,
                    }
                }
                self.i = j;
            } else if b == b'"' {
                let end = find(bytes, i + 1, b"\"").unwrap_or(bytes.len());
                self.i = end + 1;
                return Some(&bytes[i + 1..end]);
            } else if b == b'$' && next.is_some_and(|c| c.is_ascii_digit()) {
                let mut j = i + 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                self.i = j;
                return Some(&bytes[i..j]);
            } else if b == b'$' {
                // $tag$ .. $tag$
                self.i = match find(bytes, i + 1, b"$") {
                    Some(end)
                        if bytes[i + 1..end]
                            .iter()
                            .all(|c| c.is_ascii_alphabetic() || *c == b'_') =>
                    {
                        let tag = &bytes[i..=end];
                        find(bytes, end + 1, tag).map_or(bytes.len(), |n| n + tag.len())
                    }
                    _ => i + 1,
                };
            } else if ident(b) {
                let mut j = i;
                while j < bytes.len() && ident(bytes[j]) {
                    j += 1;
                }
                self.i = j;
                // E'..', B'..', X'..' literals: the prefix is not a word.
                let prefix = j - i == 1 && matches!(b | 0x20, b'e' | b'b' | b'x');
                if prefix && bytes.get(j) == Some(&b'\'') {
                    self.escapes = b | 0x20 == b'e';
                } else {
                    return Some(&bytes[i..j]);
                }
            } else {
                self.i = i + 1;
            }
        }
        None
    }
}
