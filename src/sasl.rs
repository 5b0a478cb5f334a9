//! Owns the SASL/OAUTHBEARER (RFC 7628) client message: parsing and the error challenge.
//!
//! Pure: no I/O, no clock. It checks the message's shape, as Kafka's broker does
//! (`OAuthBearerClientInitialResponse`), and hands out the token as untrusted text; it never
//! decodes or verifies the token, which is [`UnverifiedToken`](crate::UnverifiedToken)'s and
//! [`verify`](crate::verify)'s job.
//!
//! The grammar is written by hand rather than with a regex crate: it is a few lines, and a
//! hand-written scanner reports *which* part is malformed without ever echoing the token.
//!
//! ```text
//! message    = gs2-header %x01 *(key "=" value %x01) %x01
//! gs2-header = "n," [ "a=" authzid ] ","          ; "y" and "p=..." are refused
//! authzid    = 1*( %x20-2B / %x2D-3C / %x3E-7E / "=2C" / "=3D" )
//! key        = 1*ALPHA                              ; "auth" carries the token
//! value      = 1*( %x21-7E / SP / HTAB / CR / LF )
//! auth value = scheme 1*SP token                    ; scheme "Bearer", any letter case
//! token      = 1*( ALPHA / DIGIT / "-" / "_" / "." )
//! ```
//!
//! Where poolgate is stricter than Kafka, it says so: duplicate keys are refused (Kafka keeps
//! the last), keys spelling `auth` in another letter case are refused (Kafka treats `Auth` as an
//! ordinary extension), and an authorization identity may not hold control characters (Kafka
//! allows `%x01-1F` and `%x7F`).

use std::collections::HashSet;
use std::fmt;

use crate::error::clip;

/// The default cap on a whole client message, checked before anything is decoded (64 KiB).
///
/// A JWT is capped at 16 KiB ([`DEFAULT_MAX_TOKEN_SIZE`](crate::DEFAULT_MAX_TOKEN_SIZE)); the
/// rest leaves room for the GS2 header and extensions while bounding the work an unauthenticated
/// peer can cause.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Separates the GS2 header, each key/value item and the final terminator.
const SEP: char = '\x01';
/// The reserved key whose value carries the token.
const AUTH_KEY: &str = "auth";
/// The extension naming the Kafka logical cluster.
const LOGICAL_CLUSTER_KEY: &str = "logicalCluster";
/// The extension naming the identity pools the client asks for.
const IDENTITY_POOL_ID_KEY: &str = "identityPoolId";

/// Why a SASL/OAUTHBEARER client message was refused. Every variant has the code
/// `malformed_sasl` ([`SaslError::code`]).
///
/// Messages never contain the token, an extension value or the authorization identity; the
/// only user input shown is a key that already passed the key grammar (ASCII letters).
///
/// ```
/// use poolgate::sasl::{ClientFirstMessage, SaslError};
/// let err = ClientFirstMessage::parse(b"y,,\x01auth=Bearer t\x01\x01").unwrap_err();
/// assert_eq!(err, SaslError::ChannelBindingNotSupported);
/// assert_eq!(err.code(), "malformed_sasl");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaslError {
    /// The message is longer than the cap; nothing of it was read.
    #[error("sasl message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The message's length in bytes.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// The message is not UTF-8 (the grammar is ASCII only).
    #[error("the sasl message is not utf-8")]
    NotUtf8,
    /// The GS2 header is not `n,,` or `n,a=<authzid>,`, or is not followed by `0x01`.
    #[error("malformed gs2 header: {0}")]
    BadGs2Header(&'static str),
    /// The client asked for channel binding (`y` or `p=...`), which is not supported.
    #[error("channel binding is not supported: the gs2 flag must be `n`")]
    ChannelBindingNotSupported,
    /// The authorization identity is empty, has a bad `=` escape or a forbidden character.
    #[error("malformed authorization identity: {0}")]
    BadAuthzid(&'static str),
    /// No `auth` item.
    #[error("the message has no `auth` item")]
    MissingAuth,
    /// The `auth` value is not `Bearer <token>` (scheme in any letter case), or the token has
    /// a character outside `-_.a-zA-Z0-9`.
    #[error("malformed `auth` value: {0}")]
    BadAuthValue(&'static str),
    /// An item has no `=`, or its key is empty or not ASCII letters.
    #[error("malformed key in item {position}: {reason}")]
    BadKey {
        /// The 1-based position of the item among the message's key/value items (for the
        /// builder: in the message it would encode, where `auth` comes first).
        position: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extension's value is empty or has a character outside `%x21-7E`, space, tab, CR, LF.
    #[error("malformed value for `{key}`: {reason}")]
    BadValue {
        /// The extension's key (clipped).
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An extension is named `auth` in some letter case; that name is reserved for the token.
    #[error("the key `auth` is reserved, in any letter case, and cannot name an extension")]
    ReservedKey,
    /// A key appears more than once (`auth` included).
    #[error("key `{0}` appears more than once")]
    DuplicateKey(String),
    /// The message does not end with the empty item that closes it (`0x01 0x01`).
    #[error("the message is not terminated by 0x01 0x01")]
    MissingTerminator,
    /// Bytes follow the message's terminator.
    #[error("bytes follow the message's terminator")]
    TrailingData,
}

impl SaslError {
    /// The stable code of every SASL error: `malformed_sasl`.
    pub fn code(&self) -> &'static str {
        "malformed_sasl"
    }
}

/// A parsed SASL/OAUTHBEARER client first message (RFC 7628 section 3.1).
///
/// Holds the token as sent (untrusted), the decoded authorization identity, and the extensions
/// in message order without `auth`. Its `Debug` shows the token's length, never the token.
///
/// ```
/// use poolgate::sasl::ClientFirstMessage;
/// // What librdkafka sends.
/// let m = ClientFirstMessage::parse(
///     b"n,,\x01auth=Bearer eyJ.eyJ.sig\x01logicalCluster=lkc-1\x01identityPoolId=pool-1\x01\x01",
/// )
/// .unwrap();
/// assert_eq!(m.token(), "eyJ.eyJ.sig");
/// assert_eq!(m.authzid(), None);
/// assert_eq!(m.logical_cluster(), Some("lkc-1"));
/// assert_eq!(m.identity_pool_ids(), Some(vec!["pool-1"]));
/// assert!(!format!("{m:?}").contains("eyJ"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientFirstMessage {
    token: String,
    authzid: Option<String>,
    extensions: Vec<(String, String)>,
}

impl ClientFirstMessage {
    /// Takes the message apart: the token, the authorization identity and the extensions.
    pub fn into_parts(self) -> (String, Option<String>, Vec<(String, String)>) {
        (self.token, self.authzid, self.extensions)
    }

    /// Parses a client first message of at most [`DEFAULT_MAX_MESSAGE_SIZE`] bytes.
    ///
    /// # Errors
    /// Any [`SaslError`]; see [`parse_with_limit`](Self::parse_with_limit).
    pub fn parse(bytes: &[u8]) -> Result<ClientFirstMessage, SaslError> {
        Self::parse_with_limit(bytes, DEFAULT_MAX_MESSAGE_SIZE)
    }

    /// Parses a client first message of at most `max` bytes, strictly: a GS2 header without
    /// channel binding, key/value items each closed by `0x01`, exactly one `auth` item holding
    /// `Bearer <token>`, no duplicate key, and nothing after the closing `0x01`.
    ///
    /// # Errors
    /// [`SaslError::TooLarge`] (checked first, before decoding), then [`SaslError::NotUtf8`]
    /// (the whole message), then whichever part is malformed first, reading left to right.
    pub fn parse_with_limit(bytes: &[u8], max: usize) -> Result<ClientFirstMessage, SaslError> {
        if bytes.len() > max {
            return Err(SaslError::TooLarge {
                size: bytes.len(),
                limit: max,
            });
        }
        let message = std::str::from_utf8(bytes).map_err(|_| SaslError::NotUtf8)?;
        let (authzid, rest) = parse_gs2_header(message)?;
        let mut rest = rest.strip_prefix(SEP).ok_or(SaslError::BadGs2Header(
            "the header is not followed by 0x01",
        ))?;

        let mut token = None;
        let mut extensions = Vec::new();
        let mut seen = Seen::default();
        let mut position = 0;
        loop {
            let Some((item, after)) = rest.split_once(SEP) else {
                return Err(SaslError::MissingTerminator);
            };
            rest = after;
            if item.is_empty() {
                break;
            }
            position += 1;
            let (key, value) = split_item(item, position)?;
            if !seen.insert(key) {
                return Err(SaslError::DuplicateKey(clip(key)));
            }
            if key == AUTH_KEY {
                token = Some(parse_auth_value(value)?);
            } else {
                check_value(key, value)?;
                extensions.push((key.to_owned(), value.to_owned()));
            }
        }
        if !rest.is_empty() {
            return Err(SaslError::TrailingData);
        }
        let token = token.ok_or(SaslError::MissingAuth)?;
        Ok(ClientFirstMessage {
            token: token.to_owned(),
            authzid,
            extensions,
        })
    }

    /// Starts a message carrying `token`, for clients and tests; [`build`] checks it against
    /// the same rules [`parse`](Self::parse) applies.
    ///
    /// ```
    /// use poolgate::sasl::ClientFirstMessage;
    /// let m = ClientFirstMessage::new("eyJ.eyJ.sig")
    ///     .authzid("alice,admin")
    ///     .extension("logicalCluster", "lkc-1")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(m.to_bytes(), b"n,a=alice=2Cadmin,\x01auth=Bearer eyJ.eyJ.sig\x01logicalCluster=lkc-1\x01\x01");
    /// assert_eq!(ClientFirstMessage::parse(&m.to_bytes()).unwrap(), m);
    /// ```
    ///
    /// [`build`]: ClientFirstMessageBuilder::build
    #[expect(
        clippy::new_ret_no_self,
        reason = "the message is only ever made through a validating builder"
    )]
    pub fn new(token: impl Into<String>) -> ClientFirstMessageBuilder {
        ClientFirstMessageBuilder {
            token: token.into(),
            authzid: None,
            extensions: Vec::new(),
        }
    }

    /// The token, exactly as sent; not verified.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The authorization identity with `=2C` and `=3D` decoded, if the GS2 header had one.
    pub fn authzid(&self) -> Option<&str> {
        self.authzid.as_deref()
    }

    /// The extensions in message order, without `auth`.
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// The value of the extension named `key` (exact, case-sensitive); never the token.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The `logicalCluster` extension, if present.
    pub fn logical_cluster(&self) -> Option<&str> {
        self.extension(LOGICAL_CLUSTER_KEY)
    }

    /// The `identityPoolId` extension split on `,`, each id trimmed of ASCII whitespace, empty
    /// ids dropped; `None` when the extension is absent. `Some` of an empty list is possible (a
    /// value of only commas and spaces); callers must treat it as "no pool named".
    pub fn identity_pool_ids(&self) -> Option<Vec<&str>> {
        self.extension(IDENTITY_POOL_ID_KEY).map(|v| {
            v.split(',')
                .map(str::trim_ascii)
                .filter(|id| !id.is_empty())
                .collect()
        })
    }

    /// Encodes the message in the canonical form librdkafka and Kafka's Java client send: the
    /// GS2 header, `auth=Bearer <token>` first, then the extensions in order.
    ///
    /// `parse(to_bytes())` gives back an equal message. The bytes can differ from those
    /// parsed: the scheme is written `Bearer`, one space follows it, and `auth` comes first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let extensions_len: usize = self
            .extensions
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        let authzid_len = self.authzid.as_ref().map_or(0, |a| 2 + 3 * a.len());
        let mut out = String::with_capacity(
            3 + authzid_len + 1 + 12 + self.token.len() + 1 + extensions_len + 1,
        );
        out.push_str("n,");
        if let Some(authzid) = &self.authzid {
            out.push_str("a=");
            encode_authzid(authzid, &mut out);
        }
        out.push(',');
        out.push(SEP);
        out.push_str("auth=Bearer ");
        out.push_str(&self.token);
        out.push(SEP);
        for (key, value) in &self.extensions {
            out.push_str(key);
            out.push('=');
            out.push_str(value);
            out.push(SEP);
        }
        out.push(SEP);
        out.into_bytes()
    }
}

impl fmt::Debug for ClientFirstMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFirstMessage")
            .field("token", &Redacted(self.token.len()))
            .field("authzid", &self.authzid)
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Builds a [`ClientFirstMessage`]; made by [`ClientFirstMessage::new`]. Its `Debug` shows the
/// token's length, never the token.
#[derive(Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ClientFirstMessageBuilder {
    token: String,
    authzid: Option<String>,
    extensions: Vec<(String, String)>,
}

impl ClientFirstMessageBuilder {
    /// Sets the authorization identity, unescaped (`,` and `=` are escaped when encoding). It
    /// must be non-empty printable ASCII (`%x20-7E`).
    pub fn authzid(mut self, authzid: impl Into<String>) -> Self {
        self.authzid = Some(authzid.into());
        self
    }

    /// Appends an extension. Its key must be ASCII letters and not `auth` in any letter case;
    /// its value non-empty `%x21-7E`, space, tab, CR or LF.
    pub fn extension(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.extensions.push((key.into(), value.into()));
        self
    }

    /// Checks the message against the rules [`ClientFirstMessage::parse`] applies (the size cap
    /// aside) and returns it.
    ///
    /// # Errors
    /// [`SaslError::BadAuthValue`] for a bad token, [`SaslError::BadAuthzid`],
    /// [`SaslError::BadKey`], [`SaslError::ReservedKey`], [`SaslError::DuplicateKey`] or
    /// [`SaslError::BadValue`].
    pub fn build(self) -> Result<ClientFirstMessage, SaslError> {
        check_token(&self.token)?;
        if let Some(authzid) = &self.authzid {
            check_decoded_authzid(authzid)?;
        }
        let mut seen = Seen::default();
        for (i, (key, value)) in self.extensions.iter().enumerate() {
            // Item 1 of the encoded message is `auth`.
            check_key(key, i + 2)?;
            if !seen.insert(key.as_str()) {
                return Err(SaslError::DuplicateKey(clip(key)));
            }
            check_value(key, value)?;
        }
        Ok(ClientFirstMessage {
            token: self.token,
            authzid: self.authzid,
            extensions: self.extensions,
        })
    }
}

impl fmt::Debug for ClientFirstMessageBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFirstMessageBuilder")
            .field("token", &Redacted(self.token.len()))
            .field("authzid", &self.authzid)
            .field("extensions", &self.extensions)
            .finish()
    }
}

/// Stands in for the token in `Debug` output.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

/// The server's reply when authentication fails (RFC 7628 section 3.2.2): a JSON object the
/// client answers with a single `0x01` ([`is_error_acknowledgement`]), after which the server
/// fails the exchange.
///
/// ```
/// use poolgate::sasl::ErrorChallenge;
/// assert_eq!(ErrorChallenge::invalid_token().to_bytes(), br#"{"status":"invalid_token"}"#);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorChallenge {
    /// The error code, such as `invalid_token` or `insufficient_scope` (RFC 6750 section 3.1).
    pub status: String,
    /// The scopes that would have sufficed, space-separated; omitted when `None`.
    pub scope: Option<String>,
    /// The URL of the issuer's OpenID discovery document; omitted when `None`.
    pub openid_configuration: Option<String>,
}

impl ErrorChallenge {
    /// `{"status":"invalid_token"}`, what Kafka's broker sends for any token it refuses.
    pub fn invalid_token() -> Self {
        ErrorChallenge {
            status: "invalid_token".to_owned(),
            scope: None,
            openid_configuration: None,
        }
    }

    /// Compact JSON: `{"status":..,"scope":..,"openid-configuration":..}`, members in that order,
    /// `None` members omitted.
    pub fn to_bytes(&self) -> Vec<u8> {
        // By hand, so the member order is fixed whatever serde_json features are enabled;
        // `Value`'s `Display` does the string escaping and cannot fail.
        let string = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
        let mut out = format!("{{\"status\":{}", string(&self.status));
        if let Some(scope) = &self.scope {
            out.push_str(",\"scope\":");
            out.push_str(&string(scope));
        }
        if let Some(url) = &self.openid_configuration {
            out.push_str(",\"openid-configuration\":");
            out.push_str(&string(url));
        }
        out.push('}');
        out.into_bytes()
    }
}

/// Whether `bytes` is the client's acknowledgement of an [`ErrorChallenge`]: a single `0x01`
/// (RFC 7628 section 3.2.3).
pub fn is_error_acknowledgement(bytes: &[u8]) -> bool {
    bytes == [0x01]
}

/// Reads `n,,` or `n,a=<authzid>,`; returns the decoded authzid and what follows the header.
fn parse_gs2_header(message: &str) -> Result<(Option<String>, &str), SaslError> {
    if message.is_empty() {
        return Err(SaslError::BadGs2Header("the message is empty"));
    }
    if message.starts_with("y,") || message.starts_with("p=") {
        return Err(SaslError::ChannelBindingNotSupported);
    }
    let Some(rest) = message.strip_prefix("n,") else {
        return Err(SaslError::BadGs2Header(
            "the message does not start with `n,`",
        ));
    };
    if let Some(rest) = rest.strip_prefix(',') {
        return Ok((None, rest));
    }
    let Some(rest) = rest.strip_prefix("a=") else {
        return Err(SaslError::BadGs2Header(
            "expected `,` or `a=<authzid>,` after `n,`",
        ));
    };
    match rest.find([',', SEP]) {
        Some(end) if rest[end..].starts_with(',') => {
            Ok((Some(decode_authzid(&rest[..end])?), &rest[end + 1..]))
        }
        _ => Err(SaslError::BadGs2Header(
            "the authorization identity is not followed by `,`",
        )),
    }
}

/// Decodes an authzid as it appears in the GS2 header (`=2C` is `,`, `=3D` is `=`).
fn decode_authzid(raw: &str) -> Result<String, SaslError> {
    if raw.is_empty() {
        return Err(SaslError::BadAuthzid("it is empty"));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(c) = rest.chars().next() {
        if c == '=' {
            if rest.starts_with("=2C") {
                out.push(',');
            } else if rest.starts_with("=3D") {
                out.push('=');
            } else {
                return Err(SaslError::BadAuthzid("`=` must begin `=2C` or `=3D`"));
            }
            rest = &rest[3..];
        } else if is_authzid_char(c) {
            out.push(c);
            rest = &rest[1..];
        } else {
            return Err(SaslError::BadAuthzid(
                "it has a character outside printable ascii",
            ));
        }
    }
    Ok(out)
}

/// Checks a decoded authzid (the builder's input).
fn check_decoded_authzid(authzid: &str) -> Result<(), SaslError> {
    if authzid.is_empty() {
        return Err(SaslError::BadAuthzid("it is empty"));
    }
    if !authzid
        .chars()
        .all(|c| c == ',' || c == '=' || is_authzid_char(c))
    {
        return Err(SaslError::BadAuthzid(
            "it has a character outside printable ascii",
        ));
    }
    Ok(())
}

/// Escapes a decoded authzid for the GS2 header.
fn encode_authzid(authzid: &str, out: &mut String) {
    for c in authzid.chars() {
        match c {
            ',' => out.push_str("=2C"),
            '=' => out.push_str("=3D"),
            c => out.push(c),
        }
    }
}

/// A character that stands for itself in an encoded authzid: printable ASCII but `,` and `=`.
fn is_authzid_char(c: char) -> bool {
    matches!(c, ' '..='~') && c != ',' && c != '='
}

/// Splits `key=value` at the first `=` and checks the key.
fn split_item(item: &str, position: usize) -> Result<(&str, &str), SaslError> {
    let Some((key, value)) = item.split_once('=') else {
        return Err(SaslError::BadKey {
            position,
            reason: "the item has no `=`",
        });
    };
    if key != AUTH_KEY {
        check_key(key, position)?;
    }
    Ok((key, value))
}

/// Checks an extension key: ASCII letters, not `auth` in any letter case.
fn check_key(key: &str, position: usize) -> Result<(), SaslError> {
    if key.is_empty() {
        return Err(SaslError::BadKey {
            position,
            reason: "the key is empty",
        });
    }
    if !key.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(SaslError::BadKey {
            position,
            reason: "the key has a character other than an ascii letter",
        });
    }
    if key.eq_ignore_ascii_case(AUTH_KEY) {
        return Err(SaslError::ReservedKey);
    }
    Ok(())
}

/// Checks an extension value: non-empty `%x21-7E`, space, tab, CR, LF.
fn check_value(key: &str, value: &str) -> Result<(), SaslError> {
    let reason = if value.is_empty() {
        "the value is empty"
    } else if !value.bytes().all(is_value_byte) {
        "the value has a control or non-ascii character"
    } else {
        return Ok(());
    };
    Err(SaslError::BadValue {
        key: clip(key),
        reason,
    })
}

fn is_value_byte(b: u8) -> bool {
    matches!(b, 0x21..=0x7E | b' ' | b'\t' | b'\r' | b'\n')
}

/// Reads `Bearer <token>`: the scheme in any letter case, one or more spaces, the token.
fn parse_auth_value(value: &str) -> Result<&str, SaslError> {
    let Some((scheme, token)) = value.split_once(' ') else {
        return Err(SaslError::BadAuthValue("expected `Bearer <token>`"));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(SaslError::BadAuthValue("the scheme is not `Bearer`"));
    }
    let token = token.trim_start_matches(' ');
    check_token(token)?;
    Ok(token)
}

/// The keys seen so far in one message: a short array scanned linearly (a message has a few
/// keys; no allocation), moved into a hash set past 16 so that a hostile message of thousands
/// of keys is still checked in linear time.
#[derive(Default)]
struct Seen<'a> {
    few: [&'a str; 16],
    len: usize,
    many: Option<HashSet<&'a str, foldhash::fast::RandomState>>,
}

impl<'a> Seen<'a> {
    /// Records `key`; false when it was already there.
    fn insert(&mut self, key: &'a str) -> bool {
        if let Some(many) = &mut self.many {
            return many.insert(key);
        }
        if self.few[..self.len].contains(&key) {
            return false;
        }
        if self.len < self.few.len() {
            self.few[self.len] = key;
            self.len += 1;
        } else {
            let mut many = HashSet::with_hasher(foldhash::fast::RandomState::default());
            many.extend(self.few.iter().copied());
            many.insert(key);
            self.many = Some(many);
        }
        true
    }
}

/// Whether `c` is one of Kafka's token characters, `[-_.a-zA-Z0-9]`, in arithmetic the
/// compiler can vectorise (a table lookup cannot be).
#[inline]
fn is_token_byte(c: u8) -> bool {
    let lower = c | 0x20;
    (lower.wrapping_sub(b'a') < 26)
        | (c.wrapping_sub(b'0') < 10)
        | (c == b'-')
        | (c == b'_')
        | (c == b'.')
}

/// Checks a token against Kafka's `[-_.a-zA-Z0-9]+`.
fn check_token(token: &str) -> Result<(), SaslError> {
    if token.is_empty() {
        return Err(SaslError::BadAuthValue("the token is empty"));
    }
    // No short-circuit, so the scan over ~1 KB of token vectorises: a login from the
    // verified-token cache is otherwise dominated by it.
    if !token.bytes().fold(true, |ok, b| ok & is_token_byte(b)) {
        return Err(SaslError::BadAuthValue(
            "the token has a character outside `-_.a-zA-Z0-9`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bytes_are_exactly_kafkas() {
        for c in 0..=255u8 {
            let kafka = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
            assert_eq!(is_token_byte(c), kafka, "{c:#x}");
        }
    }

    #[test]
    fn duplicate_keys_are_found_among_few_and_many() {
        let mut seen = Seen::default();
        let keys: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
        for k in &keys {
            assert!(seen.insert(k));
        }
        for k in &keys {
            assert!(!seen.insert(k), "{k}");
        }
        let mut few = Seen::default();
        assert!(few.insert("a") && few.insert("b") && !few.insert("a"));
    }

    #[test]
    fn gs2_headers() {
        let ok: [(&str, Option<&str>, &str); 4] = [
            ("n,,\x01", None, "\x01"),
            ("n,a=user,\x01x", Some("user"), "\x01x"),
            ("n,a=a=2Cb=3Dc,", Some("a,b=c"), ""),
            ("n,a= x ,rest", Some(" x "), "rest"),
        ];
        for (input, authzid, rest) in ok {
            let (a, r) = parse_gs2_header(input).unwrap();
            assert_eq!((a.as_deref(), r), (authzid, rest), "{input:?}");
        }
        let bad = [
            ("", SaslError::BadGs2Header("the message is empty")),
            ("y,,", SaslError::ChannelBindingNotSupported),
            ("p=tls-unique,,", SaslError::ChannelBindingNotSupported),
            (
                "x,,",
                SaslError::BadGs2Header("the message does not start with `n,`"),
            ),
            (
                "n",
                SaslError::BadGs2Header("the message does not start with `n,`"),
            ),
            (
                "F,n,,",
                SaslError::BadGs2Header("the message does not start with `n,`"),
            ),
            (
                "n,\"a=x,",
                SaslError::BadGs2Header("expected `,` or `a=<authzid>,` after `n,`"),
            ),
            (
                "n,a=x\x01,",
                SaslError::BadGs2Header("the authorization identity is not followed by `,`"),
            ),
            (
                "n,a=x",
                SaslError::BadGs2Header("the authorization identity is not followed by `,`"),
            ),
            ("n,a=,", SaslError::BadAuthzid("it is empty")),
            (
                "n,a=x=2X,",
                SaslError::BadAuthzid("`=` must begin `=2C` or `=3D`"),
            ),
        ];
        for (input, err) in bad {
            assert_eq!(parse_gs2_header(input).unwrap_err(), err, "{input:?}");
        }
    }

    #[test]
    fn authzid_escapes() {
        for (raw, decoded) in [
            ("=2C", ","),
            ("=3D", "="),
            ("=3D2C", "=2C"),
            ("u@x.org", "u@x.org"),
            ("a b~", "a b~"),
        ] {
            assert_eq!(decode_authzid(raw).unwrap(), decoded);
            let mut encoded = String::new();
            encode_authzid(decoded, &mut encoded);
            assert_eq!(encoded, raw);
        }
        for raw in [
            "=", "=2", "=2c", "=3d", "=41", "x\ty", "x\x7fy", "é", "x\x01",
        ] {
            assert!(
                matches!(decode_authzid(raw), Err(SaslError::BadAuthzid(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn auth_values() {
        for (value, token) in [
            ("Bearer a.b.c", "a.b.c"),
            ("bearer a", "a"),
            ("BEARER   -_.azAZ09", "-_.azAZ09"),
        ] {
            assert_eq!(parse_auth_value(value).unwrap(), token, "{value:?}");
        }
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer  ",
            "Basic abc",
            "Bearer\tabc",
            "Bearer a b",
            "Bearer abc ",
            " Bearer abc",
            "Bearer a+b",
            "Bearer a/b",
            "Bearer ab==",
            "Bearer a\rb",
            "Bearerx abc",
        ] {
            assert!(
                matches!(parse_auth_value(value), Err(SaslError::BadAuthValue(_))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn keys_and_values() {
        assert!(check_key("logicalCluster", 1).is_ok());
        for key in ["", "pool_id", "pool1", "pool-id", "é"] {
            assert!(
                matches!(
                    check_key(key, 3),
                    Err(SaslError::BadKey { position: 3, .. })
                ),
                "{key:?}"
            );
        }
        for key in ["auth", "Auth", "AUTH"] {
            assert_eq!(check_key(key, 1), Err(SaslError::ReservedKey));
        }
        for value in ["x", " ", "a b\t\r\n~!", "=,"] {
            assert!(check_value("k", value).is_ok(), "{value:?}");
        }
        for value in ["", "\x00", "a\x7f", "a\x01", "é", "\x0b"] {
            assert!(
                matches!(check_value("k", value), Err(SaslError::BadValue { .. })),
                "{value:?}"
            );
        }
        assert!(split_item("noequals", 2).is_err());
        assert_eq!(split_item("k=a=b", 1).unwrap(), ("k", "a=b"));
        assert_eq!(split_item("auth=x", 1).unwrap(), ("auth", "x"));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let m = ClientFirstMessage::new("SECRET.SECRET.SECRET")
            .extension("a", "b")
            .build()
            .unwrap();
        let shown = format!("{m:?} {:?}", ClientFirstMessage::new("SECRET"));
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("20 bytes"), "{shown}");
    }

    #[test]
    fn error_messages_follow_the_style() {
        let errors = [
            SaslError::TooLarge { size: 2, limit: 1 },
            SaslError::NotUtf8,
            SaslError::BadGs2Header("the message is empty"),
            SaslError::ChannelBindingNotSupported,
            SaslError::BadAuthzid("it is empty"),
            SaslError::MissingAuth,
            SaslError::BadAuthValue("the token is empty"),
            SaslError::BadKey {
                position: 1,
                reason: "the key is empty",
            },
            SaslError::BadValue {
                key: "k".to_owned(),
                reason: "the value is empty",
            },
            SaslError::ReservedKey,
            SaslError::DuplicateKey("k".to_owned()),
            SaslError::MissingTerminator,
            SaslError::TrailingData,
        ];
        for e in errors {
            let m = e.to_string();
            assert_eq!(e.code(), "malformed_sasl");
            assert!(m.starts_with(|c: char| c.is_ascii_lowercase()), "{m}");
            assert!(!m.ends_with('.') && !m.contains('\n'), "{m}");
        }
    }

    #[test]
    fn error_challenge_json() {
        assert_eq!(
            ErrorChallenge::invalid_token().to_bytes(),
            br#"{"status":"invalid_token"}"#
        );
        let full = ErrorChallenge {
            status: "insufficient_scope".to_owned(),
            scope: Some("kafka \"x\"".to_owned()),
            openid_configuration: Some("https://idp/.well-known/openid-configuration".to_owned()),
        };
        assert_eq!(
            String::from_utf8(full.to_bytes()).unwrap(),
            r#"{"status":"insufficient_scope","scope":"kafka \"x\"","openid-configuration":"https://idp/.well-known/openid-configuration"}"#
        );
    }

    #[test]
    fn acknowledgement_is_one_soh() {
        assert!(is_error_acknowledgement(b"\x01"));
        for other in [&b""[..], b"\x01\x01", b"\x00", b"n,,\x01\x01"] {
            assert!(!is_error_acknowledgement(other));
        }
    }
}
