//! Whether a request to `POST /v1/webhooks/ats/{source}` comes from the
//! source: each scheme checked on the raw body, compared in constant time.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use crate::config::SignatureScheme;

/// Why a signature was refused: for the 401's words (never the expected
/// value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadSignature {
    /// The header (or body field) that should carry it is absent.
    Missing(String),
    /// It is there and does not match.
    Mismatch(String),
}

impl std::fmt::Display for BadSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadSignature::Missing(w) => write!(f, "the request is not signed: no {w}"),
            BadSignature::Mismatch(w) => write!(
                f,
                "the {w} does not match the body signed with the configured secret"
            ),
        }
    }
}

/// The header each scheme reads by default.
pub fn default_header(scheme: SignatureScheme) -> &'static str {
    match scheme {
        SignatureScheme::Greenhouse => "Signature",
        SignatureScheme::Lever => "",
        SignatureScheme::Indeed => "X-Indeed-Signature",
        SignatureScheme::HmacSha256 => "X-Signature",
        SignatureScheme::Token => "Authorization",
    }
}

fn hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn hmac_sha1(secret: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("HMAC takes any key");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A digest given as hex or base64 (standard or URL-safe), decoded.
fn decode_digest(text: &str) -> Vec<Vec<u8>> {
    let text = text.trim();
    let mut out = Vec::new();
    if let Ok(bytes) = hex::decode(text) {
        out.push(bytes);
    }
    for engine in [
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::URL_SAFE,
    ] {
        if let Ok(bytes) = engine.decode(text) {
            out.push(bytes);
        }
    }
    out
}

/// Checks `body` under `scheme`. `header` finds a request header by
/// name; `name` is the header the scheme reads.
pub fn verify(
    scheme: SignatureScheme,
    name: &str,
    secret: &str,
    header: impl Fn(&str) -> Option<String>,
    body: &[u8],
) -> Result<(), BadSignature> {
    let secret = secret.as_bytes();
    let given = || header(name).ok_or_else(|| BadSignature::Missing(format!("`{name}` header")));
    let mismatch = || Err(BadSignature::Mismatch(format!("`{name}` header")));
    match scheme {
        SignatureScheme::Greenhouse => {
            let given = given()?;
            let hex_part = given.trim().strip_prefix("sha256").unwrap_or(&given).trim();
            let expected = hmac_sha256(secret, &[body]);
            match hex::decode(hex_part) {
                Ok(bytes) if same(&bytes, &expected) => Ok(()),
                _ => mismatch(),
            }
        }
        SignatureScheme::Indeed => {
            let given = given()?;
            let expected = hmac_sha1(secret, body);
            match base64::engine::general_purpose::STANDARD.decode(given.trim()) {
                Ok(bytes) if same(&bytes, &expected) => Ok(()),
                _ => mismatch(),
            }
        }
        SignatureScheme::HmacSha256 => {
            let given = given()?;
            let digest = given.trim();
            let digest = digest
                .strip_prefix("sha256=")
                .or_else(|| digest.strip_prefix("sha256 "))
                .unwrap_or(digest);
            let expected = hmac_sha256(secret, &[body]);
            if decode_digest(digest).iter().any(|d| same(d, &expected)) {
                Ok(())
            } else {
                mismatch()
            }
        }
        SignatureScheme::Token => {
            let given = given()?;
            let token = given.trim();
            let token = token.strip_prefix("Bearer ").unwrap_or(token).trim();
            if same(token.as_bytes(), secret) {
                Ok(())
            } else {
                mismatch()
            }
        }
        SignatureScheme::Lever => {
            let doc: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
                BadSignature::Missing("`signature` in the body (the body is not JSON)".into())
            })?;
            let text = |key: &str| match &doc[key] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            };
            let missing = |k: &str| BadSignature::Missing(format!("`{k}` in the body"));
            let signature = text("signature").ok_or_else(|| missing("signature"))?;
            let token = text("token").ok_or_else(|| missing("token"))?;
            let triggered = text("triggeredAt").ok_or_else(|| missing("triggeredAt"))?;
            let expected = hmac_sha256(secret, &[token.as_bytes(), triggered.as_bytes()]);
            match hex::decode(signature.trim()) {
                Ok(bytes) if same(&bytes, &expected) => Ok(()),
                _ => Err(BadSignature::Mismatch("`signature` in the body".into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(pairs: &'a [(&'a str, String)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn indeed_signs_the_body_with_sha1_in_base64() {
        // The worked example of Indeed's documentation (their sample
        // secret and body, and the signature they print).
        let body =
            "{'locale':'en_US','applicant':{'fullName':'John Doe','email':'john.doe@example.com'}}";
        let sig = "SGadPKocf3HD1LYXm3xGObB6hzk=".to_string();
        let h = [("X-Indeed-Signature", sig)];
        assert_eq!(
            verify(
                SignatureScheme::Indeed,
                "X-Indeed-Signature",
                "Y0ur api secret key not shared &$%@",
                headers(&h),
                body.as_bytes()
            ),
            Ok(())
        );
        assert!(verify(
            SignatureScheme::Indeed,
            "X-Indeed-Signature",
            "another secret",
            headers(&h),
            body.as_bytes()
        )
        .is_err());
    }

    #[test]
    fn greenhouse_and_generic_hmac_and_tokens() {
        let body = br#"{"a":1}"#;
        let hex_sig = hex::encode(hmac_sha256(b"s3cret", &[body]));
        let h = [("Signature", format!("sha256 {hex_sig}"))];
        assert_eq!(
            verify(
                SignatureScheme::Greenhouse,
                "Signature",
                "s3cret",
                headers(&h),
                body
            ),
            Ok(())
        );
        assert!(matches!(
            verify(
                SignatureScheme::Greenhouse,
                "Signature",
                "s3cret",
                headers(&[]),
                body
            ),
            Err(BadSignature::Missing(_))
        ));
        let h = [("X-Signature", format!("sha256={hex_sig}"))];
        assert_eq!(
            verify(
                SignatureScheme::HmacSha256,
                "X-Signature",
                "s3cret",
                headers(&h),
                body
            ),
            Ok(())
        );
        let h = [("Authorization", "Bearer s3cret".to_string())];
        assert_eq!(
            verify(
                SignatureScheme::Token,
                "Authorization",
                "s3cret",
                headers(&h),
                body
            ),
            Ok(())
        );
        let h = [("Authorization", "Bearer s3cre".to_string())];
        assert!(verify(
            SignatureScheme::Token,
            "Authorization",
            "s3cret",
            headers(&h),
            body
        )
        .is_err());
    }

    #[test]
    fn lever_signs_token_and_time() {
        let sig = hex::encode(hmac_sha256(b"k", &[b"tok", b"1700000000000"]));
        let body = format!(
            r#"{{"token":"tok","triggeredAt":1700000000000,"signature":"{sig}","event":"applicationCreated"}}"#
        );
        assert_eq!(
            verify(
                SignatureScheme::Lever,
                "",
                "k",
                headers(&[]),
                body.as_bytes()
            ),
            Ok(())
        );
        let tampered = body.replace("1700000000000", "1700000000001");
        assert!(verify(
            SignatureScheme::Lever,
            "",
            "k",
            headers(&[]),
            tampered.as_bytes()
        )
        .is_err());
    }
}
