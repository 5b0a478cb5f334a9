//! Runs the authorization tables in `testdata/authz/` against the public `poolgate::authz` API,
//! checks the role table in `ROLES.md`, and property-tests the decision and the parsers.

use std::path::PathBuf;

use poolgate::authz::{
    AuthzReason, Decision, DropReason, Effect, Grant, GrantError, GrantOps, GrantOrigin,
    GrantTemplate, Operation, OperationSet, ParseError, PatternType, Permissions, Resource,
    ResourcePattern, ResourceType, Role,
};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{Map, Value};

fn testdata(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", "authz", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct GrantSpec {
    effect: Effect,
    #[serde(default)]
    operations: Option<Vec<Operation>>,
    #[serde(default)]
    role: Option<Role>,
    resource: String,
}

impl GrantSpec {
    fn ops(&self) -> GrantOps {
        match (&self.operations, self.role) {
            (Some(ops), None) => GrantOps::Operations(ops.iter().copied().collect()),
            (None, Some(role)) => GrantOps::Role(role),
            _ => panic!("a grant needs exactly one of operations and role"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// cases.json

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    grants: Vec<GrantSpec>,
    checks: Vec<Check>,
}

#[derive(Deserialize)]
struct Check {
    operation: Operation,
    resource: String,
    decision: String,
    grant: Option<usize>,
    reason: String,
}

fn reason_code(reason: AuthzReason) -> String {
    match reason {
        AuthzReason::AllowedBy => "allowed_by".into(),
        AuthzReason::ImpliedBy(op) => format!("implied_by:{op}"),
        AuthzReason::DeniedBy => "denied_by".into(),
        AuthzReason::NoGrant => "no_grant".into(),
        other => panic!("unexpected reason {other:?}"),
    }
}

fn permissions(case: &Case) -> Permissions {
    let claims = Map::new();
    case.grants
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            GrantTemplate::parse(spec.effect, spec.ops(), &spec.resource)
                .unwrap_or_else(|e| panic!("{}: grant {i}: {e}", case.name))
                .expand(&claims, GrantOrigin::new("cases", i))
                .unwrap_or_else(|e| panic!("{}: {e}", case.name))
        })
        .collect()
}

#[test]
fn decision_table() {
    let cases: Cases = serde_json::from_str(&testdata("cases.json")).unwrap();
    assert!(cases.cases.len() >= 30);
    let mut failures = Vec::new();
    for case in &cases.cases {
        let perms = permissions(case);
        for check in &case.checks {
            let resource = Resource::parse(&check.resource).unwrap();
            let a = perms.authorize(check.operation, &resource);
            let index = a.grant.map(|g| {
                perms
                    .grants()
                    .iter()
                    .position(|p| std::ptr::eq(p, g))
                    .expect("the deciding grant is one of the permissions")
            });
            let got = (a.decision.to_string(), index, reason_code(a.reason));
            let want = (check.decision.clone(), check.grant, check.reason.clone());
            if got != want {
                failures.push(format!(
                    "{}: {} on {}: got {got:?}, want {want:?}",
                    case.name, check.operation, check.resource
                ));
            }
            assert_eq!(a.is_allowed(), a.decision == Decision::Allow);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn decision_table_covers_every_role_pattern_and_resource_type() {
    let cases: Cases = serde_json::from_str(&testdata("cases.json")).unwrap();
    let specs: Vec<&GrantSpec> = cases.cases.iter().flat_map(|c| &c.grants).collect();
    for role in Role::VALUES {
        assert!(specs.iter().any(|s| s.role == Some(role)), "{role}");
    }
    for ty in ResourceType::VALUES {
        let prefix = format!("{ty}:");
        assert!(
            specs.iter().any(|s| s.resource.starts_with(&prefix)),
            "{ty}"
        );
    }
    let patterns: Vec<PatternType> = specs
        .iter()
        .map(|s| {
            s.resource
                .parse::<ResourcePattern>()
                .unwrap()
                .pattern_type()
        })
        .collect();
    for pt in [
        PatternType::Literal,
        PatternType::Prefixed,
        PatternType::Wildcard,
    ] {
        assert!(patterns.contains(&pt), "{pt}");
    }
}

// ---------------------------------------------------------------------------------------------
// templates.json

#[derive(Deserialize)]
struct Templates {
    cases: Vec<TemplateCase>,
}

#[derive(Deserialize)]
struct TemplateCase {
    name: String,
    #[serde(flatten)]
    grant: GrantSpec,
    claims: Map<String, Value>,
    expect: Map<String, Value>,
}

fn drop_code(reason: &DropReason) -> (&'static str, Option<&str>) {
    match reason {
        DropReason::MissingClaim { path } => ("missing_claim", Some(path)),
        DropReason::NotAString { path } => ("not_a_string", Some(path)),
        DropReason::EmptyValue { path } => ("empty_value", Some(path)),
        DropReason::ForbiddenCharacter { path, .. } => ("forbidden_character", Some(path)),
        DropReason::EmptyName => ("empty_name", None),
        other => panic!("unexpected drop reason {other:?}"),
    }
}

fn parse_error_code(err: &ParseError) -> &'static str {
    match err {
        ParseError::MissingSeparator { .. } => "missing_separator",
        ParseError::UnknownResourceType { .. } => "unknown_resource_type",
        ParseError::EmptyName => "empty_name",
        ParseError::MisplacedWildcard => "misplaced_wildcard",
        ParseError::ClusterName { .. } => "cluster_name",
        ParseError::ControlCharacter => "control_character",
        ParseError::Brace => "brace",
        other => panic!("unexpected parse error {other:?}"),
    }
}

fn grant_error_code(err: &GrantError) -> String {
    match err {
        GrantError::Resource { reason, .. } => format!("resource:{}", parse_error_code(reason)),
        GrantError::UnbalancedBrace { .. } => "unbalanced_brace".into(),
        GrantError::PlaceholderPrefix { .. } => "placeholder_prefix".into(),
        GrantError::EmptyClaimPath { .. } => "empty_claim_path".into(),
        GrantError::InvalidPlaceholder { .. } => "invalid_placeholder".into(),
        GrantError::PlaceholderInDeny { .. } => "placeholder_in_deny".into(),
        GrantError::NoOperations => "no_operations".into(),
        GrantError::RoleGrantsNothing { .. } => "role_grants_nothing".into(),
        other => panic!("unexpected grant error {other:?}"),
    }
}

#[test]
fn template_table() {
    let table: Templates = serde_json::from_str(&testdata("templates.json")).unwrap();
    let mut failures = Vec::new();
    for case in &table.cases {
        let compiled =
            GrantTemplate::parse(case.grant.effect, case.grant.ops(), &case.grant.resource);
        let got: Value = match compiled {
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    !msg.is_empty() && !msg.ends_with('.') && !msg.contains('\n'),
                    "{msg}"
                );
                serde_json::json!({ "error": grant_error_code(&e) })
            }
            Ok(template) => {
                assert_eq!(template.effect(), case.grant.effect);
                match template.expand(&case.claims, GrantOrigin::new("tpl", 7)) {
                    Ok(grant) => {
                        assert_eq!(grant.origin.index, 7);
                        assert_eq!(grant.origin.role, case.grant.role);
                        assert_eq!(grant.pattern.pattern_type(), template.pattern_type());
                        serde_json::json!({ "grant": serde_json::to_value(grant.view()).unwrap() })
                    }
                    Err(dropped) => {
                        assert_eq!(dropped.origin.pool, "tpl");
                        let msg = dropped.to_string();
                        for value in case.claims.values().filter_map(Value::as_str) {
                            // Claim values never appear in the message (only paths do).
                            if value.len() > 2 {
                                assert!(!msg.contains(value), "{msg}");
                            }
                        }
                        let (code, path) = drop_code(&dropped.reason);
                        serde_json::json!({ "dropped": code, "path": path })
                    }
                }
            }
        };
        if got != Value::Object(case.expect.clone()) {
            failures.push(format!(
                "{}: got {got}, want {}",
                case.name,
                Value::Object(case.expect.clone())
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// ROLES.md and the table on `Role`

fn roles_table() -> Vec<String> {
    let mut rows = vec![
        "| role | Topic | Group | TransactionalId | Cluster |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    for role in Role::VALUES {
        let cells: Vec<String> = [
            ResourceType::Topic,
            ResourceType::Group,
            ResourceType::TransactionalId,
            ResourceType::Cluster,
        ]
        .into_iter()
        .map(|ty| {
            let ops = role.operations(ty);
            if ops.is_empty() {
                "—".to_owned()
            } else {
                ops.iter()
                    .map(|op| op.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        })
        .collect();
        rows.push(format!("| `{role}` | {} |", cells.join(" | ")));
    }
    rows
}

fn without_footnotes(line: &str) -> String {
    line.replace(" ¹", "")
}

/// The rows between the `roles-table` markers of a Markdown text, without footnote marks.
fn marked_table(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("<!-- roles-table:start"))
        .skip(1)
        .take_while(|l| !l.starts_with("<!-- roles-table:end"))
        .map(without_footnotes)
        .collect()
}

#[test]
fn roles_md_matches_the_code() {
    assert_eq!(
        marked_table(&testdata("ROLES.md")),
        roles_table(),
        "regenerate testdata/authz/ROLES.md"
    );
}

#[test]
fn readme_roles_table_matches_the_code() {
    let readme = std::fs::read_to_string(
        [env!("CARGO_MANIFEST_DIR"), "README.md"]
            .iter()
            .collect::<PathBuf>(),
    )
    .unwrap();
    assert_eq!(
        marked_table(&readme),
        roles_table(),
        "update the roles table in README.md"
    );
}

#[test]
fn role_docs_match_the_code() {
    let source = std::fs::read_to_string(
        [env!("CARGO_MANIFEST_DIR"), "src", "authz", "role.rs"]
            .iter()
            .collect::<PathBuf>(),
    )
    .unwrap();
    let table: Vec<String> = source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("/// |"))
        .map(|l| without_footnotes(&format!("|{l}")))
        .collect();
    assert_eq!(
        table,
        roles_table(),
        "update the table in the docs of `Role`"
    );
}

// ---------------------------------------------------------------------------------------------
// Properties

fn resource_type() -> impl Strategy<Value = ResourceType> {
    prop::sample::select(ResourceType::VALUES.to_vec())
}

fn operation() -> impl Strategy<Value = Operation> {
    prop::sample::select(Operation::VALUES.to_vec())
}

fn operations() -> impl Strategy<Value = OperationSet> {
    prop::collection::vec(operation(), 1..4).prop_map(|ops| ops.into_iter().collect())
}

/// Short names from a tiny alphabet, so that patterns and resources collide often.
fn short_name() -> impl Strategy<Value = String> {
    "[ab]{1,3}"
}

fn pattern() -> impl Strategy<Value = ResourcePattern> {
    (resource_type(), 0..3u8, short_name()).prop_map(|(ty, kind, name)| {
        if ty == ResourceType::Cluster {
            return ResourcePattern::literal(ty, "kafka-cluster").unwrap();
        }
        match kind {
            0 => ResourcePattern::literal(ty, name).unwrap(),
            1 => ResourcePattern::prefixed(ty, name).unwrap(),
            _ => ResourcePattern::wildcard(ty).unwrap(),
        }
    })
}

fn grant_with(effect: impl Strategy<Value = Effect>) -> impl Strategy<Value = Grant> {
    (effect, operations(), pattern()).prop_map(|(effect, operations, pattern)| Grant {
        effect,
        operations,
        pattern,
        origin: GrantOrigin::new("prop", 0),
    })
}

fn any_grant() -> impl Strategy<Value = Grant> {
    grant_with(prop_oneof![Just(Effect::Allow), Just(Effect::Deny)])
}

fn request() -> impl Strategy<Value = (Operation, ResourceType, String)> {
    (operation(), resource_type(), short_name()).prop_map(|(op, ty, name)| {
        let name = if ty == ResourceType::Cluster {
            "kafka-cluster".to_owned()
        } else {
            name
        };
        (op, ty, name)
    })
}

fn decide(grants: &[Grant], (op, ty, name): &(Operation, ResourceType, String)) -> Decision {
    Permissions::new(grants.to_vec())
        .authorize(*op, &Resource::new(*ty, name))
        .decision
}

/// `*`, `{`, `}` or a control character.
fn has_forbidden(s: &str) -> bool {
    s.chars()
        .any(|c| matches!(c, '*' | '{' | '}') || c.is_control())
}

/// Cases per property.
const CASES: u32 = 2000;

/// Runs `property` over `CASES` cases of `strategy` (no failure files are written next to the
/// sources; a failure prints its minimal input).
fn run<S>(strategy: S, property: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if let Err(e) = proptest::test_runner::TestRunner::new(config).run(&strategy, property) {
        panic!("{e}");
    }
}

/// How many cases of a property reached each of its assertions, by name.
#[derive(Default)]
struct Reached(std::sync::Mutex<std::collections::BTreeMap<&'static str, u32>>);

impl Reached {
    fn count(&self, what: &'static str) {
        *self.0.lock().unwrap().entry(what).or_default() += 1;
    }

    /// Fails unless every assertion in `floors` was reached by at least its share of the
    /// cases (`1 / n`): a property whose precondition almost never holds asserts nothing.
    fn assert_floors(&self, property: &str, floors: &[(&str, u32)]) {
        let reached = self.0.lock().unwrap();
        eprintln!("{property}: {reached:?} of {CASES} cases");
        for (what, one_in) in floors {
            let n = reached.get(what).copied().unwrap_or(0);
            assert!(
                n * one_in >= CASES,
                "{property}: only {n} of {CASES} cases reached `{what}` (floor: 1 in {one_in})"
            );
        }
    }
}

/// Adding a grant of `effect` anywhere never changes a decision that already was `effect`:
/// Kafka's rules are monotonic in each direction.
fn adding_never_reverses(effect: Effect, decision: Decision, property: &str) {
    let reached = Reached::default();
    let strategy = (
        prop::collection::vec(any_grant(), 0..8),
        grant_with(Just(effect)),
        any::<prop::sample::Index>(),
        request(),
    );
    run(strategy, |(grants, extra, position, req)| {
        if decide(&grants, &req) == decision {
            reached.count("decided before");
            let mut more = grants.clone();
            more.insert(position.index(grants.len() + 1), extra);
            prop_assert_eq!(decide(&more, &req), decision);
        }
        Ok(())
    });
    reached.assert_floors(property, &[("decided before", 20)]);
}

#[test]
fn adding_an_allow_never_turns_allow_into_deny() {
    adding_never_reverses(Effect::Allow, Decision::Allow, "adding an allow");
}

#[test]
fn adding_a_deny_never_turns_deny_into_allow() {
    adding_never_reverses(Effect::Deny, Decision::Deny, "adding a deny");
}

#[test]
fn the_decision_does_not_depend_on_grant_order() {
    let reached = Reached::default();
    run(
        (prop::collection::vec(any_grant(), 0..8), request()),
        |(grants, req)| {
            let mut reversed = grants.clone();
            reversed.reverse();
            let decision = decide(&grants, &req);
            reached.count(if decision == Decision::Allow {
                "allow"
            } else {
                "deny"
            });
            prop_assert_eq!(decision, decide(&reversed, &req));
            Ok(())
        },
    );
    // Both decisions are compared, often enough to mean something.
    reached.assert_floors("grant order", &[("allow", 20), ("deny", 10)]);
}

#[test]
fn the_deciding_grant_matches_and_explains() {
    let reached = Reached::default();
    run(
        (prop::collection::vec(any_grant(), 0..8), request()),
        |(grants, req)| {
            let perms = Permissions::new(grants);
            let resource = Resource::new(req.1, &req.2);
            let a = perms.authorize(req.0, &resource);
            match (a.decision, a.reason, a.grant) {
                (Decision::Deny, AuthzReason::DeniedBy, Some(g)) => {
                    reached.count("denied by");
                    prop_assert_eq!(g.effect, Effect::Deny);
                    prop_assert!(g.matches(&resource) && g.operations.covers(req.0));
                }
                (Decision::Deny, AuthzReason::NoGrant, None) => reached.count("no grant"),
                (Decision::Allow, AuthzReason::AllowedBy, Some(g)) => {
                    reached.count("allowed by");
                    prop_assert_eq!(g.effect, Effect::Allow);
                    prop_assert!(g.matches(&resource) && g.operations.covers(req.0));
                }
                (Decision::Allow, AuthzReason::ImpliedBy(by), Some(g)) => {
                    reached.count("implied by");
                    prop_assert_eq!(g.effect, Effect::Allow);
                    prop_assert!(g.operations.covers(by));
                }
                other => prop_assert!(false, "inconsistent authorization {:?}", other),
            }
            Ok(())
        },
    );
    reached.assert_floors(
        "deciding grant",
        &[
            ("denied by", 40),
            ("no grant", 20),
            ("allowed by", 20),
            ("implied by", 400),
        ],
    );
}

#[test]
fn no_claim_value_can_widen_a_grant() {
    let reached = Reached::default();
    let strategy = (
        // Mostly names a template accepts, so that the expanded grant is checked often.
        prop_oneof![3 => "[a-z0-9._-]{1,12}", 1 => any::<String>()],
        prop::sample::select(vec![
            "Topic:{claims.v}",
            "Topic:{claims.v}*",
            "Topic:t-{claims.v}-*",
            "Group:{claims.v}-{claims.v}",
        ]),
    );
    run(strategy, |(value, template)| {
        let template = GrantTemplate::parse(Effect::Allow, Operation::Read, template).unwrap();
        let mut claims = Map::new();
        claims.insert("v".into(), Value::String(value.clone()));
        if let Ok(grant) = template.expand(&claims, GrantOrigin::new("p", 0)) {
            reached.count("expanded");
            prop_assert_eq!(grant.pattern.pattern_type(), template.pattern_type());
            prop_assert!(!grant.pattern.name().is_empty());
            prop_assert!(grant.pattern.name().contains(value.as_str()));
            prop_assert!(!has_forbidden(grant.pattern.name()));
        } else {
            reached.count("refused");
            prop_assert!(value.is_empty() || has_forbidden(&value));
        }
        Ok(())
    });
    reached.assert_floors("claim values", &[("expanded", 4), ("refused", 50)]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn parsers_never_panic(input in any::<String>()) {
        let _ = input.parse::<ResourcePattern>();
        let _ = Resource::parse(&input);
        let _ = input.parse::<Operation>();
        let _ = input.parse::<ResourceType>();
        let _ = input.parse::<Role>();
        let _ = input.parse::<Effect>();
        let _ = GrantTemplate::parse(Effect::Allow, Operation::Read, &input);
        let _ = GrantTemplate::parse(Effect::Deny, Role::DeveloperRead, &input);
    }
}

#[test]
fn template_like_strings_never_panic() {
    let reached = Reached::default();
    let strategy = (
        prop::sample::select(vec!["Topic", "Group", "Cluster", "TransactionalId", "X"]),
        r"[a{}.*:\\c-]{0,16}",
    );
    run(strategy, |(ty, name)| {
        let resource = format!("{ty}:{name}");
        if let Ok(pattern) = resource.parse::<ResourcePattern>() {
            reached.count("parsed");
            // A pattern prints in the syntax it was parsed from.
            prop_assert_eq!(pattern.to_string(), resource.clone());
        }
        let _ = GrantTemplate::parse(Effect::Allow, Role::ResourceOwner, &resource);
        Ok(())
    });
    reached.assert_floors("pattern syntax", &[("parsed", 20)]);
}
