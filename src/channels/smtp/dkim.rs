//! The DKIM signing key, loaded from the forms key tools write: for RSA,
//! PEM PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey` and OpenSSL 3
//! write) or PKCS#1 (`BEGIN RSA PRIVATE KEY`); for Ed25519, PEM PKCS#8 or
//! the base64 of the 32-byte seed. lettre reads only PKCS#1 and the bare
//! seed, so a PKCS#8 key is unwrapped here first. A key that cannot sign
//! ([`KeyError`]) is refused by `nudge check` and when the channel starts,
//! naming the file and why.

use std::fmt;

use base64::Engine as _;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm,
    DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::der::asn1::OctetStringRef;
use rsa::pkcs8::der::pem::PemLabel;
use rsa::pkcs8::der::Decode;
use rsa::pkcs8::{LineEnding, ObjectIdentifier, PrivateKeyInfo, SecretDocument};
use rsa::RsaPrivateKey;

use super::config::{DkimAlgorithm, DkimSettings};

/// The headers DKIM signs. Those a message lacks are signed as absent, so
/// they cannot be added on the way; RFC 8058 requires the two
/// `List-Unsubscribe` headers to be signed.
const SIGNED_HEADERS: &[&str] = &[
    "From",
    "Reply-To",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
];

/// The algorithm identifiers of private keys in PKCS#8: RSA (RFC 8017),
/// Ed25519 (RFC 8410), and EC (RFC 5480), named when refused.
const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// The PEM label of PKCS#1 RSA keys.
const PKCS1_LABEL: &str = "RSA PRIVATE KEY";

/// Why a key file cannot sign.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyError {
    Empty,
    /// An RSA key must be PEM.
    NotPem,
    /// PEM, but not a private key in a form read here.
    Label(String),
    /// A key of another algorithm than the configured one.
    Algorithm {
        found: &'static str,
        configured: DkimAlgorithm,
    },
    /// A PKCS#8 key of an algorithm DKIM does not sign with.
    Unsupported(String),
    /// The right form, but its content does not decode.
    Malformed(String),
    /// A bare Ed25519 seed that is not base64.
    NotBase64,
    /// A bare Ed25519 seed of the wrong length.
    SeedLength(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("the file is empty"),
            KeyError::NotPem => f.write_str("it is not PEM (no `-----BEGIN` line)"),
            KeyError::Label(label) => {
                write!(f, "it is PEM `BEGIN {label}`, not a private key")
            }
            KeyError::Algorithm { found, configured } => write!(
                f,
                "it is an {found} key, but `algorithm` is \"{}\"",
                configured.name()
            ),
            KeyError::Unsupported(what) => {
                write!(f, "it is an {what} key, which DKIM does not sign with")
            }
            KeyError::Malformed(why) => write!(f, "it does not decode: {why}"),
            KeyError::NotBase64 => f.write_str("it is neither PEM nor base64"),
            KeyError::SeedLength(n) => write!(f, "the seed is {n} bytes, not 32"),
        }
    }
}

/// Reads the key file and makes the signing configuration. The error names
/// the file, why it cannot sign and the forms accepted, never the key.
pub(super) fn load(dkim: &DkimSettings) -> Result<DkimConfig, String> {
    let path = dkim.private_key_path.display();
    let text = std::fs::read_to_string(&dkim.private_key_path)
        .map_err(|e| format!("cannot read the DKIM key {path}: {e}"))?;
    let key = signing_key(text.trim(), dkim.algorithm).map_err(|why| {
        let forms = match dkim.algorithm {
            DkimAlgorithm::Rsa => {
                "an RSA key must be PEM, `BEGIN PRIVATE KEY` (PKCS#8) \
                 or `BEGIN RSA PRIVATE KEY` (PKCS#1)"
            }
            DkimAlgorithm::Ed25519 => {
                "an Ed25519 key must be PEM `BEGIN PRIVATE KEY` (PKCS#8), \
                 or the base64 of the 32-byte private seed"
            }
        };
        format!("the DKIM key {path} is not usable: {why} ({forms})")
    })?;
    Ok(DkimConfig::new(
        dkim.selector.clone(),
        dkim.domain.clone(),
        key,
        SIGNED_HEADERS
            .iter()
            .map(|name| HeaderName::new_from_ascii_str(name))
            .collect(),
        DkimCanonicalization {
            header: DkimCanonicalizationType::Relaxed,
            body: DkimCanonicalizationType::Relaxed,
        },
    ))
}

/// The key in `text`, in whichever accepted form it is: lettre reads RSA
/// keys as PEM PKCS#1 and Ed25519 keys as the base64 seed, so a PKCS#8 key
/// is converted to that first.
fn signing_key(text: &str, algorithm: DkimAlgorithm) -> Result<DkimSigningKey, KeyError> {
    if text.is_empty() {
        return Err(KeyError::Empty);
    }
    let label = text
        .strip_prefix("-----BEGIN ")
        .and_then(|rest| rest.split_once("-----"))
        .map(|(label, _)| label);
    let lettre = |text: &str, algorithm| {
        DkimSigningKey::new(text, algorithm).map_err(|e| KeyError::Malformed(cause(&e)))
    };
    match (label, algorithm) {
        (Some(PrivateKeyInfo::PEM_LABEL), _) => {
            let (_, document) =
                SecretDocument::from_pem(text).map_err(|e| KeyError::Malformed(e.to_string()))?;
            let info = PrivateKeyInfo::try_from(document.as_bytes())
                .map_err(|e| KeyError::Malformed(e.to_string()))?;
            match (info.algorithm.oid, algorithm) {
                (RSA, DkimAlgorithm::Rsa) => {
                    let key = RsaPrivateKey::try_from(info)
                        .map_err(|e| KeyError::Malformed(e.to_string()))?;
                    let pkcs1 = key
                        .to_pkcs1_pem(LineEnding::LF)
                        .map_err(|e| KeyError::Malformed(e.to_string()))?;
                    lettre(&pkcs1, DkimSigningAlgorithm::Rsa)
                }
                (ED25519, DkimAlgorithm::Ed25519) => {
                    let seed = OctetStringRef::from_der(info.private_key)
                        .map_err(|e| KeyError::Malformed(e.to_string()))?;
                    let seed: [u8; 32] = seed
                        .as_bytes()
                        .try_into()
                        .map_err(|_| KeyError::SeedLength(seed.as_bytes().len()))?;
                    let encoded = base64::engine::general_purpose::STANDARD.encode(seed);
                    lettre(&encoded, DkimSigningAlgorithm::Ed25519)
                }
                (RSA, configured) => Err(KeyError::Algorithm {
                    found: "RSA",
                    configured,
                }),
                (ED25519, configured) => Err(KeyError::Algorithm {
                    found: "Ed25519",
                    configured,
                }),
                (EC, _) => Err(KeyError::Unsupported("EC (ECDSA)".to_string())),
                (other, _) => Err(KeyError::Unsupported(format!("algorithm {other}"))),
            }
        }
        (Some(PKCS1_LABEL), DkimAlgorithm::Rsa) => lettre(text, DkimSigningAlgorithm::Rsa),
        (Some(PKCS1_LABEL), configured) => Err(KeyError::Algorithm {
            found: "RSA",
            configured,
        }),
        (Some(label), _) => Err(KeyError::Label(label.to_string())),
        (None, DkimAlgorithm::Rsa) => Err(KeyError::NotPem),
        (None, DkimAlgorithm::Ed25519) => {
            let seed = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|_| KeyError::NotBase64)?;
            if seed.len() != 32 {
                return Err(KeyError::SeedLength(seed.len()));
            }
            lettre(text, DkimSigningAlgorithm::Ed25519)
        }
    }
}

/// lettre's error with its cause ("rsa decode error: ..."), which its
/// `Display` leaves out.
fn cause(e: &dyn std::error::Error) -> String {
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/it/fixtures/smtp/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).unwrap()
    }

    fn why(text: &str, algorithm: DkimAlgorithm) -> String {
        match signing_key(text.trim(), algorithm) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_accepted_form_reads() {
        use DkimAlgorithm::{Ed25519, Rsa};
        for (file, algorithm) in [
            ("dkim-test.pem", Rsa),
            ("dkim-test-pkcs8.pem", Rsa),
            ("dkim-test-ed25519-pkcs8.pem", Ed25519),
            ("dkim-test-ed25519.key", Ed25519),
        ] {
            assert_eq!(why(&fixture(file), algorithm), "ok", "{file}");
        }
    }

    #[test]
    fn a_key_that_cannot_sign_says_why() {
        use DkimAlgorithm::{Ed25519, Rsa};
        let rsa_pkcs1 = fixture("dkim-test.pem");
        let rsa_pkcs8 = fixture("dkim-test-pkcs8.pem");
        let ed25519 = fixture("dkim-test-ed25519-pkcs8.pem");
        let damaged = rsa_pkcs1.replace("MIIE", "MXXE");
        for (text, algorithm, expected) in [
            ("", Rsa, "the file is empty"),
            ("hello", Rsa, "it is not PEM (no `-----BEGIN` line)"),
            ("hello!", Ed25519, "it is neither PEM nor base64"),
            ("aGVsbG8=", Ed25519, "the seed is 5 bytes, not 32"),
            (
                &rsa_pkcs1,
                Ed25519,
                "it is an RSA key, but `algorithm` is \"ed25519\"",
            ),
            (
                &rsa_pkcs8,
                Ed25519,
                "it is an RSA key, but `algorithm` is \"ed25519\"",
            ),
            (
                &ed25519,
                Rsa,
                "it is an Ed25519 key, but `algorithm` is \"rsa\"",
            ),
            (
                &fixture("localhost.key"),
                Rsa,
                "it is an EC (ECDSA) key, which DKIM does not sign with",
            ),
            (
                &fixture("ca.pem"),
                Rsa,
                "it is PEM `BEGIN CERTIFICATE`, not a private key",
            ),
        ] {
            assert_eq!(why(text, algorithm), expected, "{text:.40}");
        }
        assert!(
            why(&damaged, Rsa).starts_with("it does not decode: "),
            "{}",
            why(&damaged, Rsa)
        );
    }
}
