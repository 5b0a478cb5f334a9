//! The client side of SCRAM (RFC 5802, with SHA-256/512 as RFC 7677 and Kafka use them): the
//! client-first message, the client-final message with its proof, and the check of the
//! server's signature. Pure: the nonce is an argument, nothing here reads a clock or a socket.
//!
//! Written by hand: the crates that do SCRAM bring a second crypto library or their own
//! networking; the exchange is four short messages around PBKDF2 and HMAC, both from aws-lc-rs
//! (the crypto library the gateway already uses). No channel binding (`n,,`), as Kafka; no
//! SASLprep, as Kafka's own `ScramFormatter` (the password's UTF-8 bytes as they are).

use std::num::NonZeroU32;

use aws_lc_rs::{constant_time, digest, hmac, pbkdf2};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use poolgate::config::ScramHash;

/// The fewest PBKDF2 iterations accepted from a server (RFC 7677 and Kafka: 4096). Fewer would
/// let a rogue server make an offline guess at the password from our proof cheaper.
const MIN_ITERATIONS: u32 = 4096;
/// The most iterations computed (bounds the CPU a server can make the gateway spend).
const MAX_ITERATIONS: u32 = 1 << 20;

/// Why a SCRAM exchange failed on the client side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// The server's first message is not `r=...,s=...,i=...`.
    #[error("malformed server-first message: {0}")]
    ServerFirst(&'static str),
    /// The server's nonce does not extend ours.
    #[error("the server's nonce does not start with the client's")]
    Nonce,
    /// Iterations out of range.
    #[error("the server asks for {0} iterations (accepted: {MIN_ITERATIONS} to {MAX_ITERATIONS})")]
    Iterations(u32),
    /// The server reported an error in its final message (`e=`).
    #[error("the server refused the proof: `{0}`")]
    ServerError(String),
    /// The server's final message is not `v=...`.
    #[error("malformed server-final message")]
    ServerFinal,
    /// The server's signature is wrong: it does not know the password (or the exchange was
    /// tampered with).
    #[error("the server's signature does not match: it could not prove it knows the password")]
    ServerSignature,
}

/// An exchange after the client-first message.
#[derive(Debug)]
pub struct ClientFirst {
    hash: ScramHash,
    nonce: String,
    bare: String,
}

/// An exchange after the client-final message: what the server must answer.
#[derive(Debug)]
pub struct ClientFinal {
    server_signature: Vec<u8>,
}

/// `saslname` (RFC 5802 section 5.1): `=` and `,` escaped.
fn saslname(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

fn algorithms(
    hash: ScramHash,
) -> (
    pbkdf2::Algorithm,
    hmac::Algorithm,
    &'static digest::Algorithm,
) {
    {
        match hash {
            ScramHash::Sha256 => (
                pbkdf2::PBKDF2_HMAC_SHA256,
                hmac::HMAC_SHA256,
                &digest::SHA256,
            ),
            ScramHash::Sha512 => (
                pbkdf2::PBKDF2_HMAC_SHA512,
                hmac::HMAC_SHA512,
                &digest::SHA512,
            ),
        }
    }
}

/// The client-first message for `username` with `nonce` (printable, without `,`).
pub fn client_first(hash: ScramHash, username: &str, nonce: &str) -> (Vec<u8>, ClientFirst) {
    let bare = format!("n={},r={nonce}", saslname(username));
    let message = format!("n,,{bare}").into_bytes();
    (
        message,
        ClientFirst {
            hash,
            nonce: nonce.to_owned(),
            bare,
        },
    )
}

impl ClientFirst {
    /// The client-final message (with the proof) for the server's first message.
    ///
    /// # Errors
    /// A malformed server-first message, a nonce that does not extend ours, iterations out of
    /// range.
    pub fn finish(
        self,
        server_first: &[u8],
        password: &str,
    ) -> Result<(Vec<u8>, ClientFinal), ScramError> {
        let text =
            std::str::from_utf8(server_first).map_err(|_| ScramError::ServerFirst("not UTF-8"))?;
        let mut parts = text.split(',');
        let mut next = |key: &str| {
            parts
                .next()
                .and_then(|p| p.strip_prefix(key))
                .ok_or(ScramError::ServerFirst("expected r=, s= and i="))
        };
        if text.starts_with("m=") {
            return Err(ScramError::ServerFirst("unsupported mandatory extension"));
        }
        let nonce = next("r=")?;
        let salt = STANDARD
            .decode(next("s=")?)
            .map_err(|_| ScramError::ServerFirst("salt is not base64"))?;
        let iterations: u32 = next("i=")?
            .parse()
            .map_err(|_| ScramError::ServerFirst("iterations are not a number"))?;
        if nonce.len() <= self.nonce.len() || !nonce.starts_with(&self.nonce) {
            return Err(ScramError::Nonce);
        }
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let rounds = NonZeroU32::new(iterations).ok_or(ScramError::Iterations(iterations))?;
        let (kdf, mac, dig) = algorithms(self.hash);
        let mut salted = vec![0u8; dig.output_len()];
        pbkdf2::derive(kdf, rounds, &salt, password.as_bytes(), &mut salted);
        let salted = hmac::Key::new(mac, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        let stored_key = digest::digest(dig, client_key.as_ref());
        let server_key = hmac::sign(&salted, b"Server Key");
        // `biws` is base64 of `n,,`: no channel binding, no authorization identity.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.bare);
        let client_signature = hmac::sign(
            &hmac::Key::new(mac, stored_key.as_ref()),
            auth_message.as_bytes(),
        );
        let proof: Vec<u8> = client_key
            .as_ref()
            .iter()
            .zip(client_signature.as_ref())
            .map(|(k, s)| k ^ s)
            .collect();
        let server_signature = hmac::sign(
            &hmac::Key::new(mac, server_key.as_ref()),
            auth_message.as_bytes(),
        );
        let message = format!("{without_proof},p={}", STANDARD.encode(proof)).into_bytes();
        Ok((
            message,
            ClientFinal {
                server_signature: server_signature.as_ref().to_vec(),
            },
        ))
    }
}

impl ClientFinal {
    /// Checks the server-final message: the server must prove that it knows the password.
    ///
    /// # Errors
    /// The server's error (`e=`), a malformed message, a wrong signature.
    pub fn verify(self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = std::str::from_utf8(server_final).map_err(|_| ScramError::ServerFinal)?;
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::ServerError(poolgate_clip(e)));
        }
        let v = text
            .split(',')
            .next()
            .and_then(|p| p.strip_prefix("v="))
            .ok_or(ScramError::ServerFinal)?;
        let got = STANDARD.decode(v).map_err(|_| ScramError::ServerFinal)?;
        constant_time::verify_slices_are_equal(&got, &self.server_signature)
            .map_err(|_| ScramError::ServerSignature)
    }
}

/// At most 100 printable characters of a server's error.
fn poolgate_clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 section 3, the SCRAM-SHA-256 example.
    #[test]
    fn rfc_7677_example() {
        let (first, state) = client_first(ScramHash::Sha256, "user", "rOprNGfwEbeRWgbNEkqO");
        assert_eq!(first, b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let (fin, state) = state.finish(server_first, "pencil").unwrap();
        assert_eq!(
            std::str::from_utf8(&fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        state
            .verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
    }

    fn after_first(password: &str) -> ClientFinal {
        let (_, state) = client_first(ScramHash::Sha256, "user", "rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        state.finish(server_first, password).unwrap().1
    }

    #[test]
    fn a_server_that_cannot_prove_the_password_fails() {
        let table: [(&[u8], ScramError); 4] = [
            // The signature of a server with another password for `user`.
            (
                b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                ScramError::ServerSignature,
            ),
            (b"v=", ScramError::ServerSignature),
            (b"x=1", ScramError::ServerFinal),
            (
                b"e=invalid-proof",
                ScramError::ServerError("invalid-proof".into()),
            ),
        ];
        for (server_final, expected) in table {
            assert_eq!(after_first("pencil").verify(server_final), Err(expected));
        }
        // The right signature, for a client with the wrong password: refused too.
        assert_eq!(
            after_first("pencil2").verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::ServerSignature)
        );
    }

    #[test]
    fn bad_server_first_messages_are_refused() {
        let table: [(&[u8], ScramError); 6] = [
            (b"r=abc,s=AAAA,i=4096", ScramError::Nonce),
            (b"r=client,s=AAAA,i=4096", ScramError::Nonce),
            (b"r=clientX,s=AAAA,i=1", ScramError::Iterations(1)),
            (
                b"r=clientX,s=!!,i=4096",
                ScramError::ServerFirst("salt is not base64"),
            ),
            (
                b"r=clientX,i=4096",
                ScramError::ServerFirst("expected r=, s= and i="),
            ),
            (
                b"m=x,r=clientX,s=AAAA,i=4096",
                ScramError::ServerFirst("unsupported mandatory extension"),
            ),
        ];
        for (server_first, expected) in table {
            let (_, state) = client_first(ScramHash::Sha512, "u", "client");
            assert_eq!(
                state.finish(server_first, "p").map(|_| ()),
                Err(expected),
                "{}",
                String::from_utf8_lossy(server_first)
            );
        }
    }

    proptest::proptest! {
        /// Whatever a server sends, the client answers or refuses; it never panics, and a
        /// server-final message it did not compute never passes.
        #[test]
        fn arbitrary_server_messages_never_panic(
            first in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            last in proptest::collection::vec(proptest::num::u8::ANY, 0..100),
        ) {
            let (_, state) = client_first(ScramHash::Sha256, "u", "nonce");
            let _ = state.finish(&first, "p");
            proptest::prop_assert!(after_first("pencil").verify(&last).is_err());
        }
    }

    #[test]
    fn user_names_are_escaped() {
        let (first, _) = client_first(ScramHash::Sha512, "a=b,c", "n");
        assert_eq!(first, b"n,,n=a=3Db=2Cc,r=n");
    }
}
