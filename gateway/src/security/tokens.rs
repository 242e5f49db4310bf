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
        "token (shown once; give it to the client as `authorization: Bearer <token>`, or as the \
         password of a PostgreSQL-wire login as user {name}):\n{token}\n\n\
         add to the tokens file or the config:\n[principals.{name}]\ntoken_sha256 = \"{}\"\n\
         scram_sha256 = \"{}\"\n",
        to_hex(&hash(&token)),
        scram_verifier(&token),
    ))
}

/// The SCRAM-SHA-256 verifier of `token` used as a password, in
/// PostgreSQL's form, with a fresh salt.
pub fn scram_verifier(token: &str) -> String {
    postgres_protocol::password::scram_sha_256(token.as_bytes())
}

/// A SCRAM-SHA-256 verifier: what a server keeps to check a password
/// without knowing it (RFC 5802).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramVerifier {
    /// The PBKDF2 iteration count.
    pub iterations: u32,
    /// The salt.
    pub salt: Vec<u8>,
    /// `SHA256(ClientKey)`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
}

impl std::fmt::Debug for ScramVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScramVerifier(..)")
    }
}

/// Reads a verifier in PostgreSQL's form:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, base64.
pub fn parse_scram(text: &str) -> Result<ScramVerifier, String> {
    const FORM: &str = "expected SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> \
                        (`omnigate token new` prints one)";
    let b64 = |part: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(part)
            .map_err(|_| format!("not base64: {FORM}"))
    };
    let rest = text
        .trim()
        .strip_prefix("SCRAM-SHA-256$")
        .ok_or_else(|| FORM.to_owned())?;
    let (params, keys) = rest.split_once('$').ok_or_else(|| FORM.to_owned())?;
    let (iterations, salt) = params.split_once(':').ok_or_else(|| FORM.to_owned())?;
    let (stored_key, server_key) = keys.split_once(':').ok_or_else(|| FORM.to_owned())?;
    let verifier = ScramVerifier {
        iterations: iterations
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| FORM.to_owned())?,
        salt: b64(salt)?,
        stored_key: b64(stored_key)?,
        server_key: b64(server_key)?,
    };
    if verifier.stored_key.len() != 32 || verifier.server_key.len() != 32 {
        return Err(format!("keys of 32 bytes: {FORM}"));
    }
    Ok(verifier)
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
