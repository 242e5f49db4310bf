//! PostgreSQL `numeric` in its binary form, to and from exact decimal text
//! (never through a float).
//!
//! Wire form: ndigits (i16), weight (i16), sign (u16), dscale (u16), then
//! ndigits base-10000 digits (i16); the first digit is worth 10000^weight.

const POS: u16 = 0x0000;
const NEG: u16 = 0x4000;
const NAN: u16 = 0xC000;
const PINF: u16 = 0xD000;
const NINF: u16 = 0xF000;

/// Decodes a binary numeric to decimal text with exactly `dscale` decimals.
pub(crate) fn decode(raw: &[u8]) -> Option<String> {
    let word = |i: usize| {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)? as i16);
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NAN => return Some("NaN".into()),
        PINF => return Some("Infinity".into()),
        NINF => return Some("-Infinity".into()),
        POS | NEG => {}
        _ => return None,
    }
    if raw.len() < 8 + ndigits * 2 {
        return None;
    }
    // pos counts base-10000 places from the first stored digit; places
    // past the stored ones are zero.
    let digit = |pos: i32| -> u16 {
        usize::try_from(pos)
            .ok()
            .filter(|p| *p < ndigits)
            .and_then(|p| word(4 + p))
            .unwrap_or(0)
    };
    if (0..ndigits).any(|i| word(4 + i).is_none_or(|d| d > 9999)) {
        return None;
    }
    // Written digit by digit: no allocation but the result (this runs for
    // every numeric cell of every row).
    let four = |d: u16| {
        [
            b'0' + (d / 1000) as u8,
            b'0' + (d / 100 % 10) as u8,
            b'0' + (d / 10 % 10) as u8,
            b'0' + (d % 10) as u8,
        ]
    };
    let mut out: Vec<u8> = Vec::with_capacity(4 * (ndigits + 2) + dscale + 2);
    if sign == NEG {
        out.push(b'-');
    }
    if weight < 0 {
        out.push(b'0');
    } else {
        let first = four(digit(0));
        let skip = first.iter().take(3).take_while(|c| **c == b'0').count();
        out.extend_from_slice(&first[skip..]);
        for pos in 1..=weight {
            out.extend_from_slice(&four(digit(pos)));
        }
    }
    if dscale > 0 {
        out.push(b'.');
        let end = out.len() + dscale;
        let mut pos = weight + 1;
        while out.len() < end {
            out.extend_from_slice(&four(digit(pos)));
            pos += 1;
        }
        out.truncate(end);
    }
    // Only ASCII digits, '-' and '.' were written.
    let out = String::from_utf8(out).ok()?;
    Some(out)
}

/// Encodes decimal text (`-12.340`, `1e-3`, `NaN`, `Infinity`) as a binary
/// numeric, keeping its scale. `None` when it is not a decimal.
pub(crate) fn encode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let special = match text {
        "NaN" | "nan" => Some(NAN),
        "Infinity" | "+Infinity" | "inf" => Some(PINF),
        "-Infinity" | "-inf" => Some(NINF),
        _ => None,
    };
    if let Some(sign) = special {
        return Some(header(0, 0, sign, 0));
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match body.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // All digits, and how many of them stand before the decimal point.
    let all: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let len = i64::try_from(all.len()).ok()?;
    let point = i64::try_from(int_part.len()).ok()? + i64::from(exponent);
    let scale = (len - point).max(0);
    if scale > 16383 || point > 131_072 {
        return None;
    }
    let zeros = |n: i64| "0".repeat(usize::try_from(n.max(0)).unwrap_or(0));
    let split = usize::try_from(point.clamp(0, len)).ok()?;
    let digits = std::str::from_utf8(&all).ok()?;
    let mut int_digits = format!("{}{}", &digits[..split], zeros(point - len));
    let mut frac_digits = format!("{}{}", zeros(-point), &digits[split..]);
    // Pad to whole base-10000 groups around the point.
    int_digits.insert_str(0, &zeros((4 - int_digits.len() as i64 % 4) % 4));
    frac_digits.push_str(&zeros((4 - frac_digits.len() as i64 % 4) % 4));
    let mut weight = i64::try_from(int_digits.len() / 4).ok()? - 1;
    let joined = int_digits + &frac_digits;
    let mut groups: Vec<u16> = joined
        .as_bytes()
        .chunks(4)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'))
        })
        .collect();
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= i64::try_from(leading).ok()?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let sign = if negative && !groups.is_empty() {
        NEG
    } else {
        POS
    };
    let mut out = header(
        u16::try_from(groups.len()).ok()?,
        i16::try_from(weight).ok()?,
        sign,
        u16::try_from(scale).ok()?,
    );
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    Some(out)
}

fn header(ndigits: u16, weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + usize::from(ndigits) * 2);
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        decode(&encode(text).unwrap_or_else(|| panic!("encode {text}"))).unwrap()
    }

    #[test]
    fn round_trips_exactly() {
        for (input, output) in [
            ("0", "0"),
            ("1", "1"),
            ("-1", "-1"),
            ("10000", "10000"),
            ("12345.6789", "12345.6789"),
            ("0.0001", "0.0001"),
            ("0.00001", "0.00001"),
            ("-0.5", "-0.5"),
            ("1.10", "1.10"),
            (
                "123456789012345678901234567890.000000000000000000001",
                "123456789012345678901234567890.000000000000000000001",
            ),
            ("1e3", "1000"),
            ("1.5e-3", "0.0015"),
            ("-0", "0"),
            ("0.000", "0.000"),
            ("NaN", "NaN"),
            ("-Infinity", "-Infinity"),
            ("99999999", "99999999"),
        ] {
            assert_eq!(round(input), output, "{input}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_decimal() {
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "1e",
            "abc",
            "1,5",
            "0x10",
            "1e99999999999",
        ] {
            assert!(encode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn decodes_the_wire_form() {
        // 12345.678 = [1, 2345, 6780], weight 1, dscale 3
        let raw = [0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c];
        assert_eq!(decode(&raw).unwrap(), "12345.678");
        assert!(decode(&[0, 1]).is_none(), "truncated input is refused");
    }
}
