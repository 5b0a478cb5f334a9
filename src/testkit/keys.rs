//! Owns the test issuer's signing keys: generating them, loading fixed ones, signing JWS input,
//! and publishing each as a JWK.

use std::fmt;

use aws_lc_rs::signature::{
    self as sig, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    RsaKeyPair, RsaPublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use num_bigint::BigUint;
use serde_json::{Value, json};

use crate::Algorithm;

/// The bytes of `testdata/keys/rsa-1024.pk8.der`: a deliberately weak 1024-bit RSA key.
const WEAK_RSA_1024_PKCS8: &[u8] = include_bytes!("../../testdata/keys/rsa-1024.pk8.der");

/// A signature algorithm the test issuer can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(clippy::upper_case_acronyms)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys when generated).
    RS256,
    /// ECDSA on P-256 with SHA-256, fixed-width `r || s` signatures.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlg {
    /// Every signing algorithm, in the issuer's default order.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    /// The JOSE name, as in a token's `alg` header.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "RS256",
            SigningAlg::ES256 => "ES256",
            SigningAlg::EdDSA => "EdDSA",
        }
    }

    /// The verifier-side algorithm with the same name.
    pub const fn algorithm(self) -> Algorithm {
        match self {
            SigningAlg::RS256 => Algorithm::RS256,
            SigningAlg::ES256 => Algorithm::ES256,
            SigningAlg::EdDSA => Algorithm::EdDSA,
        }
    }

    /// A lowercase tag used as the prefix of generated key ids.
    pub(crate) const fn kid_prefix(self) -> &'static str {
        match self {
            SigningAlg::RS256 => "rs256",
            SigningAlg::ES256 => "es256",
            SigningAlg::EdDSA => "eddsa",
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<SigningAlg> for Algorithm {
    fn from(alg: SigningAlg) -> Algorithm {
        alg.algorithm()
    }
}

/// A key could not be generated or loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("testkit signing key rejected: {0}")]
pub struct KeyError(String);

/// The private half of a [`SigningKey`].
enum Material {
    /// An RSA key aws-lc-rs accepts (2048..=8192 bits).
    Rsa(RsaKeyPair),
    /// An RSA key below aws-lc-rs's minimum, signed with plain big-integer arithmetic.
    WeakRsa(WeakRsa),
    /// A P-256 key.
    Ec(EcdsaKeyPair),
    /// An Ed25519 key.
    Ed(Ed25519KeyPair),
}

/// A raw RSA private key (`n`, `d`), for keys too small for aws-lc-rs to load.
struct WeakRsa {
    n: BigUint,
    e: BigUint,
    d: BigUint,
    /// The modulus length in bytes (the signature length).
    k: usize,
}

/// A private signing key with its key id, algorithm and public JWK.
pub struct SigningKey {
    kid: String,
    alg: SigningAlg,
    material: Material,
    jwk: Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("bits", &self.modulus_bits())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key (RSA 2048, P-256 or Ed25519) with key id `kid`.
    ///
    /// Key generation only fails when the system has no randomness, which the testkit treats as
    /// impossible; [`SigningKey::try_generate`] reports it instead.
    #[expect(
        clippy::expect_used,
        reason = "aws-lc-rs key generation fails only without system randomness"
    )]
    pub fn generate(alg: SigningAlg, kid: impl Into<String>) -> SigningKey {
        SigningKey::try_generate(alg, kid).expect("aws-lc-rs key generation")
    }

    /// Generates a fresh key (RSA 2048, P-256 or Ed25519) with key id `kid`.
    pub fn try_generate(alg: SigningAlg, kid: impl Into<String>) -> Result<SigningKey, KeyError> {
        let rejected = |e: aws_lc_rs::error::Unspecified| KeyError(format!("generate {alg}: {e}"));
        let material = match alg {
            SigningAlg::RS256 => Material::Rsa(
                RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(rejected)?,
            ),
            SigningAlg::ES256 => Material::Ec(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(rejected)?,
            ),
            SigningAlg::EdDSA => Material::Ed(Ed25519KeyPair::generate().map_err(rejected)?),
        };
        Ok(SigningKey::new(kid.into(), alg, material))
    }

    /// Loads a key of algorithm `alg` from unencrypted PKCS#8 DER.
    ///
    /// RSA keys below 2048 bits (which aws-lc-rs refuses) are accepted too: they are signed with
    /// plain big-integer arithmetic, so tests can prove a verifier refuses weak keys.
    pub fn from_pkcs8_der(
        alg: SigningAlg,
        der: &[u8],
        kid: impl Into<String>,
    ) -> Result<SigningKey, KeyError> {
        let material = match alg {
            SigningAlg::RS256 => match RsaKeyPair::from_pkcs8(der) {
                Ok(pair) => Material::Rsa(pair),
                Err(strong_err) => Material::WeakRsa(
                    WeakRsa::from_pkcs8(der)
                        .map_err(|weak_err| KeyError(format!("{strong_err}; {weak_err}")))?,
                ),
            },
            SigningAlg::ES256 => Material::Ec(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| KeyError(e.to_string()))?,
            ),
            SigningAlg::EdDSA => Material::Ed(
                Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                    .map_err(|e| KeyError(e.to_string()))?,
            ),
        };
        Ok(SigningKey::new(kid.into(), alg, material))
    }

    /// Loads an RS256 key from unencrypted PKCS#8 DER (any size from 512 bits up).
    pub fn rsa_from_pkcs8_der(der: &[u8], kid: impl Into<String>) -> Result<SigningKey, KeyError> {
        SigningKey::from_pkcs8_der(SigningAlg::RS256, der, kid)
    }

    /// The fixed 1024-bit RSA key from `testdata/keys/rsa-1024.pk8.der`, as an RS256 key.
    ///
    /// A verifier must refuse it (too small); publish it with `TestIssuer::publish`.
    #[expect(
        clippy::expect_used,
        reason = "the key is a fixed, known-good file compiled into the crate"
    )]
    pub fn weak_rsa_1024(kid: impl Into<String>) -> SigningKey {
        SigningKey::rsa_from_pkcs8_der(WEAK_RSA_1024_PKCS8, kid)
            .expect("testdata/keys/rsa-1024.pk8.der is a valid RSA key")
    }

    fn new(kid: String, alg: SigningAlg, material: Material) -> SigningKey {
        let jwk = public_jwk(&kid, alg, &material);
        SigningKey {
            kid,
            alg,
            material,
            jwk,
        }
    }

    /// The key id (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// For RSA keys, the modulus size in bits; `None` for other keys.
    pub fn modulus_bits(&self) -> Option<usize> {
        match &self.material {
            Material::Rsa(pair) => Some(pair.public_modulus_len() * 8),
            Material::WeakRsa(weak) => usize::try_from(weak.n.bits()).ok(),
            Material::Ec(_) | Material::Ed(_) => None,
        }
    }

    /// The public key as a JWK object: `kty`, key parameters, `kid`, `use: "sig"`, `alg`.
    pub fn public_jwk(&self) -> Value {
        self.jwk.clone()
    }

    /// The JWS signature over `signing_input` (`base64url(header) "." base64url(claims)`):
    /// RSA PKCS#1 v1.5 SHA-256, ECDSA P-256 fixed `r || s` (64 bytes), or Ed25519.
    #[expect(
        clippy::expect_used,
        reason = "signing with a validated in-memory key fails only on allocation failure"
    )]
    pub fn sign(&self, signing_input: &[u8]) -> Vec<u8> {
        self.try_sign(signing_input).expect("aws-lc-rs signing")
    }

    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match &self.material {
            Material::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(&sig::RSA_PKCS1_SHA256, &rng, msg, &mut out)?;
                Ok(out)
            }
            Material::WeakRsa(weak) => Ok(weak.sign_pkcs1_sha256(msg)),
            Material::Ec(pair) => Ok(pair.sign(&rng, msg)?.as_ref().to_vec()),
            Material::Ed(pair) => Ok(pair.sign(msg).as_ref().to_vec()),
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn public_jwk(kid: &str, alg: SigningAlg, material: &Material) -> Value {
    match material {
        Material::Rsa(pair) => {
            let components = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
            json!({
                "kty": "RSA",
                "n": b64(&components.n),
                "e": b64(&components.e),
                "kid": kid,
                "use": "sig",
                "alg": alg.as_str(),
            })
        }
        Material::WeakRsa(weak) => json!({
            "kty": "RSA",
            "n": b64(&weak.n.to_bytes_be()),
            "e": b64(&weak.e.to_bytes_be()),
            "kid": kid,
            "use": "sig",
            "alg": alg.as_str(),
        }),
        Material::Ec(pair) => {
            // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
            let point = pair.public_key().as_ref();
            let x = point.get(1..33).unwrap_or_default();
            let y = point.get(33..65).unwrap_or_default();
            json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(x),
                "y": b64(y),
                "kid": kid,
                "use": "sig",
                "alg": alg.as_str(),
            })
        }
        Material::Ed(pair) => json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(pair.public_key().as_ref()),
            "kid": kid,
            "use": "sig",
            "alg": alg.as_str(),
        }),
    }
}

/// `DigestInfo` DER prefix for SHA-256 (RFC 8017 section 9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// DER OID content bytes of `rsaEncryption` (1.2.840.113549.1.1.1).
const RSA_ENCRYPTION_OID: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

impl WeakRsa {
    /// Parses PKCS#8 `PrivateKeyInfo` wrapping a PKCS#1 `RSAPrivateKey`.
    fn from_pkcs8(der: &[u8]) -> Result<WeakRsa, String> {
        let (info, rest) = der::take(der, der::SEQUENCE)?;
        der::end(rest)?;
        let (_version, info) = der::take(info, der::INTEGER)?;
        let (alg_id, info) = der::take(info, der::SEQUENCE)?;
        let (oid, _params) = der::take(alg_id, der::OID)?;
        if oid != RSA_ENCRYPTION_OID {
            return Err("PKCS#8 key is not rsaEncryption".to_owned());
        }
        let (private_key, _attributes) = der::take(info, der::OCTET_STRING)?;
        let (rsa, rest) = der::take(private_key, der::SEQUENCE)?;
        der::end(rest)?;
        let (_version, rsa) = der::take(rsa, der::INTEGER)?;
        let (n, rsa) = der::take(rsa, der::INTEGER)?;
        let (e, rsa) = der::take(rsa, der::INTEGER)?;
        let (d, _crt) = der::take(rsa, der::INTEGER)?;
        let n = BigUint::from_bytes_be(n);
        let e = BigUint::from_bytes_be(e);
        let d = BigUint::from_bytes_be(d);
        if n.bits() < 512 {
            return Err(format!(
                "RSA modulus of {} bits is too small even for tests",
                n.bits()
            ));
        }
        // Consistency check: (m^e)^d == m for a small message.
        let m = BigUint::from(0x5eed_u32);
        if m.modpow(&e, &n).modpow(&d, &n) != m {
            return Err("RSA key components are inconsistent".to_owned());
        }
        let k = usize::try_from(n.bits().div_ceil(8)).map_err(|e| e.to_string())?;
        Ok(WeakRsa { n, e, d, k })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 section 8.2.1), unpadded-width `k` bytes.
    fn sign_pkcs1_sha256(&self, msg: &[u8]) -> Vec<u8> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, msg);
        let t_len = SHA256_DIGEST_INFO.len() + digest.as_ref().len();
        let mut em = Vec::with_capacity(self.k);
        em.extend_from_slice(&[0x00, 0x01]);
        em.resize(self.k.saturating_sub(t_len + 1), 0xff);
        em.push(0x00);
        em.extend_from_slice(&SHA256_DIGEST_INFO);
        em.extend_from_slice(digest.as_ref());
        let s = BigUint::from_bytes_be(&em).modpow(&self.d, &self.n);
        let s = s.to_bytes_be();
        let mut out = vec![0; self.k.saturating_sub(s.len())];
        out.extend_from_slice(&s);
        out
    }
}

/// Just enough DER reading for a PKCS#8 RSA private key.
mod der {
    pub(super) const INTEGER: u8 = 0x02;
    pub(super) const OCTET_STRING: u8 = 0x04;
    pub(super) const OID: u8 = 0x06;
    pub(super) const SEQUENCE: u8 = 0x30;

    /// Reads one TLV of tag `tag`: returns its contents and the bytes after it.
    /// INTEGER contents lose their sign-padding leading zero.
    pub(super) fn take(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
        let (&found, rest) = input.split_first().ok_or("DER: unexpected end")?;
        if found != tag {
            return Err(format!("DER: expected tag {tag:#04x}, found {found:#04x}"));
        }
        let (&first, mut rest) = rest.split_first().ok_or("DER: missing length")?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 {
                return Err("DER: unsupported length".to_owned());
            }
            let (bytes, after) = rest
                .split_at_checked(count)
                .ok_or("DER: truncated length")?;
            rest = after;
            bytes
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b))
        };
        let (mut contents, after) = rest.split_at_checked(len).ok_or("DER: truncated value")?;
        if tag == INTEGER {
            while let [0, tail @ ..] = contents {
                if tail.is_empty() {
                    break;
                }
                contents = tail;
            }
        }
        Ok((contents, after))
    }

    /// Fails unless `input` is empty.
    pub(super) fn end(input: &[u8]) -> Result<(), String> {
        if input.is_empty() {
            Ok(())
        } else {
            Err("DER: trailing bytes".to_owned())
        }
    }
}
