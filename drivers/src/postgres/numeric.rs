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
pub(crate) fn decode(raw: &[u8]) -> Option<crate::Text> {
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
    // Written digit by digit: no allocation but the result's when it is
    // long (this runs for every numeric cell of every row).
    let four = |d: u16| {
        [
            b'0' + (d / 1000) as u8,
            b'0' + (d / 100 % 10) as u8,
            b'0' + (d / 10 % 10) as u8,
            b'0' + (d % 10) as u8,
        ]
    };
    let first = four(digit(0));
    let skip = first.iter().take(3).take_while(|c| **c == b'0').count();
    let whole = match usize::try_from(weight) {
        Ok(weight) => 4 - skip + 4 * weight,
        Err(_) => 1,
    };
    let len = usize::from(sign == NEG) + whole + if dscale > 0 { 1 + dscale } else { 0 };
    // Whether the text filled `out` exactly (it does: `len` is counted
    // from the same places; checked rather than indexed all the same).
    let fill = |out: &mut [u8]| -> bool {
        let mut at = 0;
        let mut fits = true;
        let mut put = |digits: &[u8]| match out.get_mut(at..at + digits.len()) {
            Some(slot) => {
                slot.copy_from_slice(digits);
                at += digits.len();
            }
            None => fits = false,
        };
        if sign == NEG {
            put(b"-");
        }
        if weight < 0 {
            put(b"0");
        } else {
            put(&first[skip..]);
            for pos in 1..=weight {
                put(&four(digit(pos)));
            }
        }
        if dscale > 0 {
            put(b".");
            let mut left = dscale;
            let mut pos = weight + 1;
            while left > 0 {
                let group = four(digit(pos));
                put(&group[..left.min(4)]);
                left = left.saturating_sub(4);
                pos += 1;
            }
        }
        fits && at == out.len()
    };
    // Written into a buffer of its exact length: most numerics fit in 24
    // bytes and stay inline in the text, with no allocation at all.
    const INLINE: usize = 24;
    if len <= INLINE {
        let mut buf = [0u8; INLINE];
        let text = buf.get_mut(..len)?;
        fill(text).then_some(())?;
        std::str::from_utf8(text).ok().map(crate::Text::from)
    } else {
        let mut buf = vec![0u8; len];
        fill(&mut buf).then_some(())?;
        String::from_utf8(buf)
            .ok()
            .map(crate::Text::from_string_buffer)
    }
}

/// Encodes decimal text (`-12.340`, `1e-3`, `NaN`, `Infinity`) as a binary
/// numeric, keeping its scale. `None` when it is not a decimal.
#[cfg(test)]
pub(crate) fn encode(text: &str) -> Option<Vec<u8>> {
    let mut out = bytes::BytesMut::new();
    encode_into(text, &mut out).map(|()| out.to_vec())
}

/// [`encode`] onto the end of `out`, with no allocation of its own (this
/// runs for every numeric cell sent or returned); nothing is written when
/// the text is not a decimal.
pub(crate) fn encode_into(text: &str, out: &mut bytes::BytesMut) -> Option<()> {
    let text = text.trim();
    let special = match text {
        "NaN" | "nan" => Some(NAN),
        "Infinity" | "+Infinity" | "inf" => Some(PINF),
        "-Infinity" | "-inf" => Some(NINF),
        _ => None,
    };
    if let Some(sign) = special {
        header(out, 0, 0, sign, 0);
        return Some(());
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
    // The digits, the point's place among them moved by the exponent.
    let digits = || int_part.bytes().chain(frac_part.bytes());
    if !digits().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len = i64::try_from(int_part.len() + frac_part.len()).ok()?;
    let point = i64::try_from(int_part.len()).ok()? + i64::from(exponent);
    let scale = u16::try_from((len - point).max(0)).ok()?;
    if scale > 16383 || point > 131_072 {
        return None;
    }
    // Digit i is worth 10^(point - 1 - i); base-10000 digit g holds the
    // powers 4g..4g+3. Zeros before the first and after the last non-zero
    // digit are not stored.
    let Some(first) = digits().position(|b| b != b'0') else {
        header(out, 0, 0, POS, scale);
        return Some(());
    };
    let last = int_part.len() + frac_part.len() - 1 - digits().rev().position(|b| b != b'0')?;
    let power = |i: usize| point - 1 - i as i64;
    let (top, bottom) = (power(first).div_euclid(4), power(last).div_euclid(4));
    let ndigits = u16::try_from(top - bottom + 1).ok()?;
    let weight = i16::try_from(top).ok()?;
    header(
        out,
        ndigits,
        weight,
        if negative { NEG } else { POS },
        scale,
    );
    let mut group = top;
    let mut value: u16 = 0;
    for (i, d) in digits().enumerate().take(last + 1).skip(first) {
        let p = power(i);
        if p.div_euclid(4) != group {
            out.extend_from_slice(&value.to_be_bytes());
            (group, value) = (p.div_euclid(4), 0);
        }
        value += u16::from(d - b'0') * 10u16.pow(p.rem_euclid(4) as u32);
    }
    out.extend_from_slice(&value.to_be_bytes());
    Some(())
}

fn header(out: &mut bytes::BytesMut, ndigits: u16, weight: i16, sign: u16, dscale: u16) {
    out.reserve(8 + usize::from(ndigits) * 2);
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(text: &str) -> String {
        decode(&encode(text).unwrap_or_else(|| panic!("encode {text}")))
            .unwrap()
            .into()
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
            ("00012000.00100", "12000.00100"),
            ("9999.9999e4", "99999999"),
            ("12e-1", "1.2"),
            ("123456789e-3", "123456.789"),
            ("-0.0", "0.0"),
            ("1e-4", "0.0001"),
            ("+7", "7"),
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

    #[test]
    fn short_decimals_decode_without_an_allocation() {
        for text in [
            "12345.678",
            "-0.33333333333333333333",
            "100000000000000000000000",
        ] {
            let decoded = decode(&encode(text).unwrap()).unwrap();
            assert_eq!(decoded, text);
            assert!(!decoded.is_heap_allocated(), "{text} is held inline");
        }
        let long = "1234567890.12345678901234567890";
        assert_eq!(decode(&encode(long).unwrap()).unwrap(), long);
    }

    #[test]
    fn every_length_and_scale_round_trips() {
        // Whole parts of 0 to 40 digits, 0 to 30 decimals, either sign:
        // both sides of the inline limit and every place in a group.
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut digit = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            char::from(b'0' + (seed % 10) as u8)
        };
        for whole in 0..=40 {
            for scale in 0..=30 {
                let mut text = String::new();
                if (whole + scale) % 3 == 0 {
                    text.push('-');
                }
                text.push(char::from(b'1' + (whole % 9) as u8));
                (1..whole).for_each(|_| text.push(digit()));
                if scale > 0 {
                    text.push('.');
                    (0..scale).for_each(|_| text.push(digit()));
                }
                assert_eq!(round(&text), text);
            }
        }
    }
}
