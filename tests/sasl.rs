//! The SASL/OAUTHBEARER client message parser against its table and against proptest.
//!
//! `testdata/sasl/messages.json` holds real client bytes (librdkafka, kafkajs, Kafka's Java
//! client, RFC 7628's example) and one case per malformation, each with the variant it must
//! produce; its format is in `testdata/sasl/README.md`. The properties check that no input
//! panics the parser, that whatever parses re-encodes to an equal message, and that the
//! builder's output always parses back to what was built.

use std::collections::{BTreeSet, HashSet};

use poolgate::sasl::{
    ClientFirstMessage, DEFAULT_MAX_MESSAGE_SIZE, ErrorChallenge, SaslError,
    is_error_acknowledgement,
};
use proptest::prelude::*;
use serde::Deserialize;

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/sasl/messages.json");

/// Every token in the table that a message could leak contains this marker.
const SECRET: &str = "SECRET";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    #[expect(dead_code, reason = "documentation for readers of the file")]
    about: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[expect(dead_code, reason = "documentation for readers of the file")]
    why: String,
    bytes: Bytes,
    expect: String,
    // For "ok" cases.
    token: Option<String>,
    #[serde(default, deserialize_with = "present")]
    authzid: Option<Option<String>>,
    extensions: Option<Vec<(String, String)>>,
    #[serde(default, deserialize_with = "present")]
    logical_cluster: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    identity_pool_ids: Option<Option<Vec<String>>>,
    #[serde(default)]
    canonical: bool,
    // For "malformed_sasl" cases.
    error: Option<String>,
    message: Option<String>,
}

/// A member that is present, `null` included (`Some(None)`), as opposed to absent (`None`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The message bytes: a string (its UTF-8), or a list of segments for bytes a JSON string
/// cannot hold (non-UTF-8) or would make unreadable (a long run).
#[derive(Deserialize)]
#[serde(untagged)]
enum Bytes {
    Text(String),
    Segments(Vec<Segment>),
}

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Segment {
    Text(String),
    Hex { hex: String },
    Repeat { repeat: String, times: usize },
}

impl Bytes {
    fn to_vec(&self) -> Vec<u8> {
        match self {
            Bytes::Text(s) => s.as_bytes().to_vec(),
            Bytes::Segments(segments) => segments
                .iter()
                .flat_map(|segment| match segment {
                    Segment::Text(s) => s.as_bytes().to_vec(),
                    Segment::Hex { hex } => hex_decode(hex),
                    Segment::Repeat { repeat, times } => repeat.repeat(*times).into_bytes(),
                })
                .collect(),
        }
    }
}

fn hex_decode(hex: &str) -> Vec<u8> {
    let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex `{hex}`");
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).unwrap();
            u8::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex `{hex}`"))
        })
        .collect()
}

/// The variant's name, as the table spells it.
fn variant(e: &SaslError) -> &'static str {
    match e {
        SaslError::TooLarge { .. } => "TooLarge",
        SaslError::NotUtf8 => "NotUtf8",
        SaslError::BadGs2Header(_) => "BadGs2Header",
        SaslError::ChannelBindingNotSupported => "ChannelBindingNotSupported",
        SaslError::BadAuthzid(_) => "BadAuthzid",
        SaslError::MissingAuth => "MissingAuth",
        SaslError::BadAuthValue(_) => "BadAuthValue",
        SaslError::BadKey { .. } => "BadKey",
        SaslError::BadValue { .. } => "BadValue",
        SaslError::ReservedKey => "ReservedKey",
        SaslError::DuplicateKey(_) => "DuplicateKey",
        SaslError::MissingTerminator => "MissingTerminator",
        SaslError::TrailingData => "TrailingData",
        _ => "unknown",
    }
}

/// Every variant; the table must produce each at least once.
const VARIANTS: [&str; 13] = [
    "TooLarge",
    "NotUtf8",
    "BadGs2Header",
    "ChannelBindingNotSupported",
    "BadAuthzid",
    "MissingAuth",
    "BadAuthValue",
    "BadKey",
    "BadValue",
    "ReservedKey",
    "DuplicateKey",
    "MissingTerminator",
    "TrailingData",
];

fn check_ok(case: &Case, bytes: &[u8], m: &ClientFirstMessage) -> Result<(), String> {
    let token = case.token.as_deref().ok_or("an ok case needs `token`")?;
    if m.token() != token {
        return Err(format!("token {:?}, expected {token:?}", m.token()));
    }
    let authzid = case.authzid.as_ref().ok_or("an ok case needs `authzid`")?;
    if m.authzid() != authzid.as_deref() {
        return Err(format!("authzid {:?}, expected {authzid:?}", m.authzid()));
    }
    let extensions = case
        .extensions
        .as_ref()
        .ok_or("an ok case needs `extensions`")?;
    if m.extensions() != extensions.as_slice() {
        return Err(format!(
            "extensions {:?}, expected {extensions:?}",
            m.extensions()
        ));
    }
    for (k, v) in extensions {
        if m.extension(k) != Some(v.as_str()) {
            return Err(format!("extension({k:?}) is {:?}", m.extension(k)));
        }
    }
    if m.extension("auth").is_some() {
        return Err("`auth` is listed as an extension".to_owned());
    }
    if let Some(expected) = &case.logical_cluster
        && m.logical_cluster() != expected.as_deref()
    {
        return Err(format!(
            "logical cluster {:?}, expected {expected:?}",
            m.logical_cluster()
        ));
    }
    if let Some(expected) = &case.identity_pool_ids {
        let got = m
            .identity_pool_ids()
            .map(|ids| ids.into_iter().map(str::to_owned).collect::<Vec<_>>());
        if &got != expected {
            return Err(format!("identity pool ids {got:?}, expected {expected:?}"));
        }
    }
    let reencoded = m.to_bytes();
    if case.canonical && reencoded != bytes {
        return Err(format!(
            "to_bytes gives {:?}",
            String::from_utf8_lossy(&reencoded)
        ));
    }
    match ClientFirstMessage::parse(&reencoded) {
        Ok(again) if &again == m => {}
        other => return Err(format!("re-encoding does not round-trip: {other:?}")),
    }
    let debug = format!("{m:?}");
    if token.len() >= 8 && debug.contains(token) || debug.contains(SECRET) {
        return Err(format!("Debug shows the token: {debug}"));
    }
    Ok(())
}

fn check_error(case: &Case, e: &SaslError) -> Result<(), String> {
    let shown = e.to_string();
    if e.code() != "malformed_sasl" {
        return Err(format!("code {}", e.code()));
    }
    let expected = case
        .error
        .as_deref()
        .ok_or("a malformed case needs `error`")?;
    if variant(e) != expected {
        return Err(format!(
            "error {} ({shown}), expected {expected}",
            variant(e)
        ));
    }
    if let Some(message) = &case.message
        && &shown != message
    {
        return Err(format!("message `{shown}`, expected `{message}`"));
    }
    let debug = format!("{e:?}");
    if shown.contains(SECRET) || debug.contains(SECRET) {
        return Err(format!("the error shows the token: {shown} / {debug}"));
    }
    if shown.ends_with('.') || shown.contains(['\n', '\r']) || shown.starts_with(char::is_uppercase)
    {
        return Err(format!("message breaks the style guide: `{shown}`"));
    }
    Ok(())
}

#[test]
fn table() {
    let text = std::fs::read_to_string(TABLE).unwrap();
    let table: Table = serde_json::from_str(&text).unwrap();
    assert!(!table.cases.is_empty());

    let mut names = HashSet::new();
    let mut produced = BTreeSet::new();
    let mut failures = Vec::new();
    for case in &table.cases {
        assert!(
            names.insert(case.name.as_str()),
            "duplicate name {}",
            case.name
        );
        let bytes = case.bytes.to_vec();
        let outcome = match (case.expect.as_str(), ClientFirstMessage::parse(&bytes)) {
            ("ok", Ok(m)) => check_ok(case, &bytes, &m),
            ("malformed_sasl", Err(e)) => {
                produced.insert(variant(&e));
                check_error(case, &e)
            }
            ("ok", Err(e)) => Err(format!("refused: {e}")),
            ("malformed_sasl", Ok(m)) => Err(format!("accepted: {m:?}")),
            (other, _) => Err(format!("unknown expect `{other}`")),
        };
        if let Err(why) = outcome {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    let missing: Vec<_> = VARIANTS.iter().filter(|v| !produced.contains(*v)).collect();
    assert!(missing.is_empty(), "no case produces {missing:?}");
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn size_cap_boundary() {
    let head = b"n,,\x01auth=Bearer t\x01note=";
    let tail = b"\x01\x01";
    let fill = DEFAULT_MAX_MESSAGE_SIZE - head.len() - tail.len();
    let at_cap = [&head[..], &vec![b'x'; fill], tail].concat();
    assert_eq!(at_cap.len(), DEFAULT_MAX_MESSAGE_SIZE);
    assert!(ClientFirstMessage::parse(&at_cap).is_ok());

    let over = [&head[..], &vec![b'x'; fill + 1], tail].concat();
    assert_eq!(
        ClientFirstMessage::parse(&over).unwrap_err(),
        SaslError::TooLarge {
            size: DEFAULT_MAX_MESSAGE_SIZE + 1,
            limit: DEFAULT_MAX_MESSAGE_SIZE
        }
    );

    let small = b"n,,\x01auth=Bearer t\x01\x01";
    assert!(ClientFirstMessage::parse_with_limit(small, small.len()).is_ok());
    assert_eq!(
        ClientFirstMessage::parse_with_limit(small, small.len() - 1).unwrap_err(),
        SaslError::TooLarge {
            size: small.len(),
            limit: small.len() - 1
        }
    );
    // The cap comes first: an oversized message is not read, even when it is not UTF-8.
    assert!(matches!(
        ClientFirstMessage::parse_with_limit(&[0xff; 8], 4),
        Err(SaslError::TooLarge { .. })
    ));
}

#[test]
fn builder_matches_librdkafka_bytes() {
    let m = ClientFirstMessage::new("eyJ.eyJ.sig")
        .extension("logicalCluster", "lkc-1")
        .extension("identityPoolId", "pool-1")
        .build()
        .unwrap();
    assert_eq!(
        m.to_bytes(),
        b"n,,\x01auth=Bearer eyJ.eyJ.sig\x01logicalCluster=lkc-1\x01identityPoolId=pool-1\x01\x01"
    );
}

#[test]
fn builder_applies_the_parser_rules() {
    let refused = [
        (ClientFirstMessage::new("").build(), "BadAuthValue"),
        (ClientFirstMessage::new("a b").build(), "BadAuthValue"),
        (ClientFirstMessage::new("ab==").build(), "BadAuthValue"),
        (
            ClientFirstMessage::new("t").authzid("").build(),
            "BadAuthzid",
        ),
        (
            ClientFirstMessage::new("t").authzid("a\nb").build(),
            "BadAuthzid",
        ),
        (
            ClientFirstMessage::new("t").authzid("é").build(),
            "BadAuthzid",
        ),
        (
            ClientFirstMessage::new("t").extension("auth", "x").build(),
            "ReservedKey",
        ),
        (
            ClientFirstMessage::new("t").extension("AUTH", "x").build(),
            "ReservedKey",
        ),
        (
            ClientFirstMessage::new("t").extension("pool1", "x").build(),
            "BadKey",
        ),
        (
            ClientFirstMessage::new("t").extension("", "x").build(),
            "BadKey",
        ),
        (
            ClientFirstMessage::new("t").extension("k", "").build(),
            "BadValue",
        ),
        (
            ClientFirstMessage::new("t")
                .extension("k", "a\x01b")
                .build(),
            "BadValue",
        ),
        (
            ClientFirstMessage::new("t")
                .extension("k", "1")
                .extension("k", "2")
                .build(),
            "DuplicateKey",
        ),
    ];
    for (i, (result, expected)) in refused.into_iter().enumerate() {
        match result {
            Err(e) => assert_eq!(variant(&e), expected, "case {i}: {e}"),
            Ok(m) => panic!("case {i} built {m:?}"),
        }
    }
    match ClientFirstMessage::new("t")
        .extension("a", "1")
        .extension("b_c", "2")
        .build()
    {
        Err(SaslError::BadKey { position, .. }) => assert_eq!(position, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn builder_debug_hides_the_token() {
    let b = ClientFirstMessage::new("SECRET.SECRET").authzid("alice");
    let shown = format!("{b:?}");
    assert!(
        !shown.contains(SECRET) && shown.contains("alice"),
        "{shown}"
    );
}

#[test]
fn error_challenge_and_acknowledgement() {
    let json: serde_json::Value =
        serde_json::from_slice(&ErrorChallenge::invalid_token().to_bytes()).unwrap();
    assert_eq!(json, serde_json::json!({"status": "invalid_token"}));

    let full = ErrorChallenge {
        status: "invalid_token".to_owned(),
        scope: Some("kafka.read kafka.write".to_owned()),
        openid_configuration: Some(
            "https://idp.example.com/.well-known/openid-configuration".to_owned(),
        ),
    };
    let text = String::from_utf8(full.to_bytes()).unwrap();
    // Compact, members in RFC 7628's order.
    assert_eq!(
        text,
        r#"{"status":"invalid_token","scope":"kafka.read kafka.write","openid-configuration":"https://idp.example.com/.well-known/openid-configuration"}"#
    );
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "status": "invalid_token",
            "scope": "kafka.read kafka.write",
            "openid-configuration": "https://idp.example.com/.well-known/openid-configuration",
        })
    );

    assert!(is_error_acknowledgement(b"\x01"));
    assert!(!is_error_acknowledgement(b""));
    assert!(!is_error_acknowledgement(b"\x01\x01"));
}

/// The librdkafka message, the seed for mutations.
const LIBRDKAFKA: &[u8] = b"n,a=u=2Cv,\x01auth=Bearer eyJ.eyJ.sig\x01logicalCluster=lkc-1\x01identityPoolId=pool-1\x01\x01";

/// One edit of a byte string.
#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes the grammar cares about, then any byte.
    let byte = prop_oneof![
        3 => prop::sample::select(&b"\x01\x00\x7f,= naAyp.-_+/\t\r\n2C3D"[..]),
        1 => any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Set(i, b)),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Remove),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    match *edit {
        Edit::Set(i, b) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] = b;
        }
        Edit::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
        Edit::Remove(i) if !bytes.is_empty() => {
            bytes.remove(i % bytes.len());
        }
        _ => {}
    }
}

/// Whatever parses must re-encode to bytes that parse to the same message.
fn reencodes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = ClientFirstMessage::parse(bytes) {
        let again = ClientFirstMessage::parse(&m.to_bytes());
        prop_assert_eq!(again.as_ref(), Ok(&m));
    }
    Ok(())
}

/// Extensions with letters-only keys, no two the same, none spelling `auth`.
fn extensions() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("[A-Za-z]{1,12}", "[!-~ \t\r\n]{1,24}"), 0..6).prop_map(|pairs| {
        let mut seen = HashSet::new();
        pairs
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("auth") && seen.insert(k.clone()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        reencodes(&bytes)?;
    }

    #[test]
    fn grammar_soup_never_panics(
        soup in "(n,|,|a=|=2C|=3D|=2X|\x01|auth=|Bearer |bearer|  |logicalCluster=|identityPoolId=|x|T|\\.|=|é|\x00|\x7f|y,|p=)*"
    ) {
        reencodes(soup.as_bytes())?;
        let mut with_header = b"n,,\x01".to_vec();
        with_header.extend_from_slice(soup.as_bytes());
        reencodes(&with_header)?;
    }

    #[test]
    fn edited_messages_never_panic(edits in prop::collection::vec(edit(), 1..4)) {
        let mut bytes = LIBRDKAFKA.to_vec();
        for e in &edits {
            apply(&mut bytes, e);
        }
        reencodes(&bytes)?;
    }

    #[test]
    fn built_messages_round_trip(
        token in "[-_.a-zA-Z0-9]{1,64}",
        authzid in prop::option::of("[ -~]{1,16}"),
        extensions in extensions(),
    ) {
        let mut builder = ClientFirstMessage::new(token.clone());
        if let Some(a) = &authzid {
            builder = builder.authzid(a.clone());
        }
        for (k, v) in &extensions {
            builder = builder.extension(k.clone(), v.clone());
        }
        let built = builder.build().unwrap();
        let parsed = ClientFirstMessage::parse(&built.to_bytes()).unwrap();
        prop_assert_eq!(&parsed, &built);
        prop_assert_eq!(parsed.token(), token.as_str());
        prop_assert_eq!(parsed.authzid(), authzid.as_deref());
        prop_assert_eq!(parsed.extensions(), extensions.as_slice());
        prop_assert_eq!(parsed.to_bytes(), built.to_bytes());
    }
}
