//! A fast check for the common shape of line protocol, which is most of
//! what a write carries: plain names, numeric or boolean fields, and an
//! optional integer timestamp, one space between the parts.
//!
//! It accepts a line only when `influxdb-line-protocol` accepts it with the
//! same fields (tests check that against the crate); anything else
//! (escapes, quotes, tabs, extra spaces, strings, numbers out of range)
//! returns `None`, and the line goes through the crate, which also words
//! the error. The crate builds its result through nom alternatives at
//! about 0.9 µs a line; this takes a fraction of that.

use crate::ts::Precision;

/// The number of fields of `line` when it is plainly valid, or `None` to
/// let the full parser decide.
pub(super) fn fields(line: &str, precision: Precision) -> Option<u64> {
    if line.starts_with('#') {
        return None; // a comment, to the crate
    }
    let mut s = Scanner {
        bytes: line.as_bytes(),
        at: 0,
    };
    s.name()?;
    while s.eat(b',') {
        s.name()?;
        s.expect(b'=')?;
        s.name()?;
    }
    s.expect(b' ')?;
    let mut count = 0;
    loop {
        s.name()?;
        s.expect(b'=')?;
        s.value()?;
        count += 1;
        if !s.eat(b',') {
            break;
        }
    }
    if s.eat(b' ') {
        let start = s.at;
        s.eat(b'-');
        s.digits()?;
        let stamp: i64 = line.get(start..s.at)?.parse().ok()?;
        precision.to_millis(stamp).ok()?;
    }
    (s.at == s.bytes.len()).then_some(count)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Bytes a name may hold without escaping in every position (measurement,
/// tag key or value, field key): printable ASCII but for the separators,
/// `\` and `"`, and any byte of a multi-byte UTF-8 character.
fn plain(b: u8) -> bool {
    ((0x21..0x7f).contains(&b) && !matches!(b, b',' | b'=' | b'\\' | b'"')) || b >= 0x80
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        self.at += usize::from(hit);
        hit
    }

    fn expect(&mut self, b: u8) -> Option<()> {
        self.eat(b).then_some(())
    }

    /// One or more plain bytes.
    fn name(&mut self) -> Option<()> {
        let start = self.at;
        while self.peek().is_some_and(plain) {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    fn digits(&mut self) -> Option<()> {
        let start = self.at;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
        (self.at > start).then_some(())
    }

    /// A field value up to the next `,`, space or the end: `-?N i`, `N u`,
    /// `-?N[.N][(e|E)[+-]N]`, or one of the crate's boolean words.
    fn value(&mut self) -> Option<()> {
        let start = self.at;
        let end = self.bytes[start..]
            .iter()
            .position(|b| matches!(b, b',' | b' '))
            .map_or(self.bytes.len(), |n| start + n);
        let token = &self.bytes[start..end];
        let text = std::str::from_utf8(token).ok()?;
        let ok = match token.last()? {
            b'i' => {
                text[..text.len() - 1].parse::<i64>().is_ok()
                    && signed_digits(&token[..token.len() - 1])
            }
            b'u' => {
                text[..text.len() - 1].parse::<u64>().is_ok()
                    && unsigned_digits(&token[..token.len() - 1])
            }
            _ => float(token) || BOOLEANS.contains(&text),
        };
        self.at = end;
        ok.then_some(())
    }
}

const BOOLEANS: [&str; 10] = [
    "t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE",
];

fn unsigned_digits(token: &[u8]) -> bool {
    !token.is_empty() && token.iter().all(u8::is_ascii_digit)
}

fn signed_digits(token: &[u8]) -> bool {
    unsigned_digits(token.strip_prefix(b"-").unwrap_or(token))
}

/// `-?N[.N][(e|E)[+-]?N]`: the crate's four float forms.
fn float(token: &[u8]) -> bool {
    let (mantissa, exponent) = match token.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(at) => (&token[..at], Some(&token[at + 1..])),
        None => (token, None),
    };
    let mantissa_ok = match mantissa.iter().position(|b| *b == b'.') {
        Some(at) => signed_digits(&mantissa[..at]) && unsigned_digits(&mantissa[at + 1..]),
        None => signed_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        unsigned_digits(
            e.strip_prefix(b"+")
                .or_else(|| e.strip_prefix(b"-"))
                .unwrap_or(e),
        )
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use influxdb_line_protocol::parse_lines;

    use super::*;
    use crate::ts::lineproto::number;

    /// What the full path makes of one line: its field count when it is
    /// written, `None` when it is refused.
    fn full(line: &str, precision: Precision) -> Option<u64> {
        let parsed = parse_lines(line).next()?.ok()?;
        if parsed.field_set.iter().any(|(_, v)| number(v).is_none()) {
            return None;
        }
        if let Some(t) = parsed.timestamp {
            precision.to_millis(t).ok()?;
        }
        Some(parsed.field_set.len() as u64)
    }

    /// The property: a line the fast check accepts, the crate accepts
    /// with the same number of fields.
    fn agrees(line: &str) -> bool {
        [Precision::Nanoseconds, Precision::Seconds]
            .into_iter()
            .all(|p| match fields(line, p) {
                Some(n) => full(line, p) == Some(n),
                None => true,
            })
    }

    #[test]
    fn the_common_shapes_take_the_fast_path() {
        for (line, n) in [
            (
                "cpu,host=a,region=eu usage=0.5,idle=99i,up=true 1700000000000000000",
                3,
            ),
            ("m v=1", 1),
            ("m v=-1.5e-3,w=2E+7,x=3e4,y=-0.25", 4),
            ("m v=18446744073709551615u,w=-9223372036854775808i", 2),
            ("m,t=x v=T,w=f,x=FALSE,y=True -5", 4),
            ("mé,tag=café/ü:1 v=1", 1),
        ] {
            assert_eq!(fields(line, Precision::Nanoseconds), Some(n), "{line}");
            assert_eq!(full(line, Precision::Nanoseconds), Some(n), "{line}");
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_full_parser() {
        for line in [
            "m\\ x v=1",
            "m v=\"s\"",
            "m  v=1",
            " m v=1",
            "m v=1 ",
            "m\tv=1",
            "m v=1.",
            "m v=.5",
            "m v=+1",
            "m v=1e",
            "m v=+1i",
            "m v=99999999999999999999i",
            "m v=-1u",
            "m v=tru",
            "m,a=b",
            "m, v=1",
            "m,a v=1",
            "m v=1,",
            "m v=1 12x",
            "m v=1 99999999999999999999",
            "m=x v=1",
            "m v==1",
            "m v=1\r",
        ] {
            assert_eq!(fields(line, Precision::Nanoseconds), None, "{line:?}");
        }
        assert_eq!(
            fields("m v=1 9223372036854775807", Precision::Seconds),
            None
        );
    }

    /// A small deterministic generator, enough to vary the lines.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    const NAMES: [&str; 5] = ["cpu", "m", "host", "é", "a.b/c:d-e_f"];
    const VALUES: [&str; 12] = [
        "1", "-2", "3.5", "-0.25", "1e9", "2.5E-3", "7i", "-8i", "9u", "t", "False", "0",
    ];
    const SOUP: [&str; 24] = [
        " ",
        ",",
        "=",
        "\\",
        "\"",
        "-",
        "+",
        ".",
        "e",
        "E",
        "i",
        "u",
        "t",
        "1",
        "0",
        "9",
        "x",
        "é",
        "\t",
        "#",
        "true",
        "99999999999999999999",
        "  ",
        "\\ ",
    ];

    fn valid_line(rng: &mut Rng) -> String {
        let mut line = rng.pick(&NAMES).to_owned();
        for _ in 0..rng.below(3) {
            line += &format!(",{}={}", rng.pick(&NAMES), rng.pick(&NAMES));
        }
        for i in 0..=rng.below(3) {
            let sep = if i == 0 { " " } else { "," };
            line += &format!("{sep}{}={}", rng.pick(&NAMES), rng.pick(&VALUES));
        }
        if rng.below(2) == 0 {
            line += &format!(" {}", rng.below(usize::MAX) as i64 - 1);
        }
        line
    }

    #[test]
    fn it_never_accepts_what_the_crate_would_not() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut accepted = 0;
        for _ in 0..50_000 {
            let line = valid_line(&mut rng);
            assert!(fields(&line, Precision::Milliseconds).is_some(), "{line:?}");
            assert!(agrees(&line), "{line:?}");
            // One edit near the valid shape: insert, replace or delete.
            let mut edited = line.clone();
            let at = rng.below(line.len() + 1);
            let at = (0..=at)
                .rev()
                .find(|i| line.is_char_boundary(*i))
                .unwrap_or(0);
            match rng.below(3) {
                0 => edited.insert_str(at, rng.pick(&SOUP)),
                1 if at < line.len() => {
                    let end = (at + 1..=line.len())
                        .find(|i| line.is_char_boundary(*i))
                        .unwrap_or(line.len());
                    edited.replace_range(at..end, rng.pick(&SOUP));
                }
                _ if at < line.len() => {
                    let end = (at + 1..=line.len())
                        .find(|i| line.is_char_boundary(*i))
                        .unwrap_or(line.len());
                    edited.replace_range(at..end, "");
                }
                _ => {}
            }
            accepted += u32::from(fields(&edited, Precision::Nanoseconds).is_some());
            assert!(agrees(&edited), "{edited:?}");
        }
        // Token soup, far from the valid shape.
        for _ in 0..50_000 {
            let line: String = (0..1 + rng.below(16)).map(|_| rng.pick(&SOUP)).collect();
            assert!(agrees(&line), "{line:?}");
        }
        assert!(
            accepted > 1000,
            "the edits kept some lines valid: {accepted}"
        );
    }
}
