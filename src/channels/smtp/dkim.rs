//! The DKIM signing key, loaded from the forms key tools write: for RSA,
//! PEM PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genpkey` and OpenSSL 3
//! write) or PKCS#1 (`BEGIN RSA PRIVATE KEY`); for Ed25519, PEM PKCS#8 or
//! the base64 of the 32-byte seed. lettre reads only PKCS#1 and the bare
//! seed, so a PKCS#8 key is unwrapped here first.

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
use rsa::pkcs8::{DecodePrivateKey, LineEnding, ObjectIdentifier, PrivateKeyInfo, SecretDocument};
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

/// The algorithm identifier of Ed25519 keys in PKCS#8 (RFC 8410).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");

/// Reads the key file and makes the signing configuration. The error names
/// the file and the forms accepted, never the key.
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

/// The key in `text`, in whichever accepted form it is.
fn signing_key(text: &str, algorithm: DkimAlgorithm) -> Result<DkimSigningKey, String> {
    let pkcs8 = text.starts_with(&format!("-----BEGIN {}-----", PrivateKeyInfo::PEM_LABEL));
    match (algorithm, pkcs8) {
        (DkimAlgorithm::Rsa, true) => {
            let key = RsaPrivateKey::from_pkcs8_pem(text).map_err(|e| e.to_string())?;
            let pkcs1 = key
                .to_pkcs1_pem(LineEnding::LF)
                .map_err(|e| e.to_string())?;
            DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| e.to_string())
        }
        (DkimAlgorithm::Rsa, false) => {
            DkimSigningKey::new(text, DkimSigningAlgorithm::Rsa).map_err(|e| e.to_string())
        }
        (DkimAlgorithm::Ed25519, true) => {
            let seed = ed25519_seed(text)?;
            let encoded = base64::engine::general_purpose::STANDARD.encode(seed);
            DkimSigningKey::new(&encoded, DkimSigningAlgorithm::Ed25519).map_err(|e| e.to_string())
        }
        (DkimAlgorithm::Ed25519, false) => {
            DkimSigningKey::new(text, DkimSigningAlgorithm::Ed25519).map_err(|e| e.to_string())
        }
    }
}

/// The 32-byte seed of an Ed25519 key in PEM PKCS#8: the private key field
/// holds it as a DER OCTET STRING (RFC 8410, section 7).
fn ed25519_seed(text: &str) -> Result<[u8; 32], String> {
    let (_, document) = SecretDocument::from_pem(text).map_err(|e| e.to_string())?;
    let info = PrivateKeyInfo::try_from(document.as_bytes()).map_err(|e| e.to_string())?;
    if info.algorithm.oid != ED25519 {
        return Err(format!(
            "the key is not Ed25519 (algorithm {})",
            info.algorithm.oid
        ));
    }
    let seed = OctetStringRef::from_der(info.private_key).map_err(|e| e.to_string())?;
    seed.as_bytes()
        .try_into()
        .map_err(|_| "the Ed25519 seed is not 32 bytes".to_string())
}
