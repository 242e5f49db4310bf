//! Bearer tokens: made at random, stored only as their SHA-256, compared
//! in constant time.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A token's digest, as stored.
pub type TokenHash = [u8; 32];

/// The digest of `token`.
pub fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Whether two digests are equal, in time that does not depend on where
/// they differ.
pub fn same(a: &TokenHash, b: &TokenHash) -> bool {
    a.ct_eq(b).into()
}

/// A new random token (256 bits from the operating system), prefixed
/// `og_` so that secret scanners can recognise it.
pub fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness from the system: {e}"))?;
    Ok(format!(
        "og_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// `hash` written as hex, as the config stores it.
pub fn to_hex(hash: &TokenHash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest read from hex; `Err` says what is wrong.
pub fn from_hex(text: &str) -> Result<TokenHash, String> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return Err("must be 64 hex digits (a SHA-256)".into());
    }
    let mut hash = [0u8; 32];
    for (i, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| "must be 64 hex digits (a SHA-256)".to_owned())?;
    }
    Ok(hash)
}

/// What `omnigate token new NAME` prints: the token once, and the lines
/// for a tokens file.
pub fn new_principal_text(name: &str) -> Result<String, String> {
    let token = new_token()?;
    Ok(format!(
        "token (shown once; give it to the client as `authorization: Bearer <token>`):\n{token}\n\n\
         add to the tokens file or the config:\n[principals.{name}]\ntoken_sha256 = \"{}\"\n",
        to_hex(&hash(&token))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_their_hashes_read_back() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("og_") && a.len() > 40, "{a}");
        let h = hash(&a);
        assert_eq!(from_hex(&to_hex(&h)).unwrap(), h);
        assert!(same(&h, &hash(&a)));
        assert!(!same(&h, &hash(&b)));
        assert!(from_hex("abc").is_err());
        assert!(from_hex(&"zz".repeat(32)).is_err());
        // The SHA-256 of "test", as `sha256sum` prints it.
        assert_eq!(
            to_hex(&hash("test")),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }
}
