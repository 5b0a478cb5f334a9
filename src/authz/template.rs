//! Grant templates: a grant whose resource name may take values from the token's claims,
//! compiled once when the configuration loads and expanded once per session.

use std::fmt;

use serde_json::{Map, Value};

use super::ParseError;
use super::grant::{Effect, Grant, GrantOrigin};
use super::operation::OperationSet;
use super::resource::{
    CLUSTER_NAME, PatternType, ResourcePattern, ResourceType, check_name_chars, split_type,
};
use super::role::Role;
use crate::error::clip;

/// What a grant entry gives: a list of operations, or a predefined role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantOps {
    /// These operations.
    Operations(OperationSet),
    /// The role's operations for the entry's resource type (see [`Role`]).
    Role(Role),
}

impl From<OperationSet> for GrantOps {
    fn from(ops: OperationSet) -> Self {
        GrantOps::Operations(ops)
    }
}

impl From<super::Operation> for GrantOps {
    fn from(op: super::Operation) -> Self {
        GrantOps::Operations(op.into())
    }
}

impl From<Role> for GrantOps {
    fn from(role: Role) -> Self {
        GrantOps::Role(role)
    }
}

/// A grant entry that cannot be compiled: a configuration error, reported when the
/// configuration loads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The resource is not a valid `TYPE:NAME` pattern.
    #[error("invalid resource `{resource}`: {reason}")]
    Resource {
        /// The resource as written (clipped).
        resource: String,
        /// What is wrong with it.
        reason: ParseError,
    },
    /// A `{` without its `}`, a `}` without its `{`, or a `{` inside a placeholder.
    #[error("unbalanced `{{` or `}}` in resource `{resource}`")]
    UnbalancedBrace {
        /// The resource as written (clipped).
        resource: String,
    },
    /// A placeholder that does not start with `claims.`, or `{}`.
    #[error("placeholder `{{{placeholder}}}` must name a claim as `{{claims.NAME}}`")]
    PlaceholderPrefix {
        /// The placeholder's text, without braces (clipped).
        placeholder: String,
    },
    /// A placeholder whose claim path is empty or has an empty segment (`{claims.}`,
    /// `{claims.a..b}`).
    #[error("placeholder `{{{placeholder}}}` has an empty claim path segment")]
    EmptyClaimPath {
        /// The placeholder's text, without braces (clipped).
        placeholder: String,
    },
    /// A placeholder whose claim path contains whitespace, a control character or `*`.
    #[error("placeholder `{{{placeholder}}}` contains a character not allowed in a claim path")]
    InvalidPlaceholder {
        /// The placeholder's text, without braces (clipped).
        placeholder: String,
    },
    /// A deny whose resource reads a claim: a token without the claim (or with a bad value)
    /// would drop the deny and so escape it.
    #[error("a deny grant cannot use claim placeholders (resource `{resource}`)")]
    PlaceholderInDeny {
        /// The resource as written (clipped).
        resource: String,
    },
    /// The entry names no operation.
    #[error("the grant names no operation")]
    NoOperations,
    /// The entry's role grants nothing on its resource type (for example `DeveloperRead` on
    /// `Cluster:kafka-cluster`).
    #[error("role {role} grants no operation on {resource_type} resources")]
    RoleGrantsNothing {
        /// The role.
        role: Role,
        /// The entry's resource type.
        resource_type: ResourceType,
    },
}

/// Why a grant was dropped when its template expanded for one token. The token keeps its
/// other grants; this one is reported and left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropReason {
    /// The claim is absent (or a segment of its path is not an object).
    #[error("claim `{path}` is missing")]
    MissingClaim {
        /// The dotted claim path.
        path: String,
    },
    /// The claim is not a string (a number, boolean, null, array or object).
    #[error("claim `{path}` is not a string")]
    NotAString {
        /// The dotted claim path.
        path: String,
    },
    /// The claim is the empty string, which would widen a prefix.
    #[error("claim `{path}` is empty")]
    EmptyValue {
        /// The dotted claim path.
        path: String,
    },
    /// The claim contains `*`, `{`, `}` or a control character. The value itself is not
    /// reported.
    #[error("claim `{path}` contains the forbidden character `{}`", .character.escape_default())]
    ForbiddenCharacter {
        /// The dotted claim path.
        path: String,
        /// The first forbidden character found.
        character: char,
    },
    /// The expansion produced an empty name.
    #[error("the expanded resource name is empty")]
    EmptyName,
}

/// A grant left out of a session's permissions, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin} dropped: {reason}")]
pub struct DroppedGrant {
    /// The grant entry that was dropped.
    pub origin: GrantOrigin,
    /// Why.
    pub reason: DropReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Claim(ClaimPath),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ClaimPath {
    /// The dotted path after `claims.`, for messages.
    dotted: String,
    keys: Vec<String>,
}

impl ClaimPath {
    fn lookup<'c>(&self, claims: &'c Map<String, Value>) -> Option<&'c Value> {
        let (first, rest) = self.keys.split_first()?;
        let mut value = claims.get(first)?;
        for key in rest {
            value = value.as_object()?.get(key)?;
        }
        Some(value)
    }
}

/// A grant entry compiled from configuration: an effect, operations or a role, and a resource
/// whose name may contain `{claims.PATH}` placeholders.
///
/// `Topic:tenant-{claims.tenant}-*` becomes, for a token with `"tenant": "acme"`, a prefixed
/// grant on `tenant-acme-`. A path is dotted into nested objects: `{claims.org.team}` reads
/// `claims["org"]["team"]`; a claim whose name contains a `.` cannot be addressed.
///
/// The syntax is checked by [`GrantTemplate::parse`]; the pattern type (literal, prefixed or
/// wildcard) is fixed by the template's own text and a claim can never change it: a claim
/// value that is missing, not a string, empty, or contains `*`, `{`, `}` or a control
/// character drops the grant ([`DroppedGrant`]), so a token can never widen its own access.
/// Unicode letters are fine. For the same reason a deny cannot use placeholders
/// ([`GrantError::PlaceholderInDeny`]): dropping a deny would widen access.
///
/// Prefixes are compared byte-wise, so choose a separator that claim values cannot contain
/// (or that a pool filter rules out): with `Topic:tenant-{claims.tenant}-*`, tenant `a` also
/// matches tenant `a-b`'s topics.
///
/// ```
/// use poolgate::authz::{Effect, GrantOrigin, GrantTemplate, Role};
/// let template =
///     GrantTemplate::parse(Effect::Allow, Role::DeveloperRead, "Topic:tenant-{claims.tenant}-*")
///         .unwrap();
/// let claims = serde_json::json!({"sub": "svc-1", "tenant": "acme"});
/// let grant = template.expand(claims.as_object().unwrap(), GrantOrigin::new("tenants", 0)).unwrap();
/// assert_eq!(grant.to_string(), "allow Read,Describe on Topic:tenant-acme-*");
///
/// let evil = serde_json::json!({"tenant": "*"});
/// let dropped = template.expand(evil.as_object().unwrap(), GrantOrigin::new("tenants", 0));
/// assert_eq!(
///     dropped.unwrap_err().to_string(),
///     "grant 1 of pool `tenants` (role DeveloperRead) dropped: \
///      claim `tenant` contains the forbidden character `*`"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantTemplate {
    effect: Effect,
    ops: GrantOps,
    operations: OperationSet,
    resource_type: ResourceType,
    pattern_type: PatternType,
    segments: Vec<Segment>,
    /// The pattern itself when the template has no placeholder.
    fixed: Option<ResourcePattern>,
    text: String,
}

impl GrantTemplate {
    /// Compiles a grant entry.
    ///
    /// `ops` is an [`OperationSet`], an [`Operation`](super::Operation) or a [`Role`].
    /// `resource` is `TYPE:NAME` as for [`ResourcePattern`], where `NAME` may also contain
    /// `{claims.PATH}` placeholders (not for `Cluster`, whose name is always
    /// `kafka-cluster`).
    ///
    /// # Errors
    /// [`GrantError`] for a bad type or name, unbalanced braces, a placeholder not of the form
    /// `{claims.a.b}`, no operation, an operation Kafka does not define on the resource type
    /// (`Write` on a group), or a role that grants nothing on the resource type.
    pub fn parse(
        effect: Effect,
        ops: impl Into<GrantOps>,
        resource: &str,
    ) -> Result<GrantTemplate, GrantError> {
        let ops = ops.into();
        let bad = |reason: ParseError| GrantError::Resource {
            resource: clip(resource),
            reason,
        };
        let (resource_type, name) = split_type(resource).map_err(bad)?;
        let (segments, pattern_type) = parse_name(resource, name)?;

        let has_claims = segments.iter().any(|s| matches!(s, Segment::Claim(_)));
        if has_claims && effect == Effect::Deny {
            return Err(GrantError::PlaceholderInDeny {
                resource: clip(resource),
            });
        }
        if resource_type == ResourceType::Cluster
            && (has_claims || pattern_type != PatternType::Literal || name != CLUSTER_NAME)
        {
            return Err(bad(ParseError::ClusterName { name: clip(name) }));
        }
        let fixed = if has_claims {
            None
        } else {
            let literal: String = segments
                .iter()
                .map(|s| match s {
                    Segment::Literal(l) => l.as_str(),
                    Segment::Claim(_) => "",
                })
                .collect();
            Some(build_pattern(resource_type, pattern_type, literal).map_err(bad)?)
        };

        let operations = match ops {
            GrantOps::Operations(set) if set.is_empty() => return Err(GrantError::NoOperations),
            GrantOps::Operations(set) => {
                // As kafka-acls refuses `--operation Write --group g`: a grant of an operation
                // Kafka does not define on the type would never decide anything.
                if let Some(op) = set.iter().find(|op| !resource_type.supports(*op)) {
                    return Err(bad(ParseError::NotApplicable {
                        operation: op,
                        resource_type,
                    }));
                }
                set
            }
            GrantOps::Role(role) => {
                let set = role.operations(resource_type);
                if set.is_empty() {
                    return Err(GrantError::RoleGrantsNothing {
                        role,
                        resource_type,
                    });
                }
                set
            }
        };

        Ok(GrantTemplate {
            effect,
            ops,
            operations,
            resource_type,
            pattern_type,
            segments,
            fixed,
            text: resource.to_owned(),
        })
    }

    /// Allow or deny.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// The operations every expansion carries (a role's already resolved).
    pub fn operations(&self) -> OperationSet {
        self.operations
    }

    /// The role the entry named, if any.
    pub fn role(&self) -> Option<Role> {
        match self.ops {
            GrantOps::Role(role) => Some(role),
            GrantOps::Operations(_) => None,
        }
    }

    /// The resource type of every expansion.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The pattern type of every expansion.
    pub fn pattern_type(&self) -> PatternType {
        self.pattern_type
    }

    /// The claim paths the template reads (dotted, without `claims.`), in order.
    pub fn claims(&self) -> impl Iterator<Item = &str> + '_ {
        self.segments.iter().filter_map(|s| match s {
            Segment::Claim(path) => Some(path.dotted.as_str()),
            Segment::Literal(_) => None,
        })
    }

    /// Builds the grant for one token's verified claims. `origin.role` is set to the
    /// template's role. A template without placeholders does not look at `claims`.
    ///
    /// # Errors
    /// [`DroppedGrant`] when a claim the template reads is missing, not a string, empty, or
    /// contains `*`, `{`, `}` or a control character, or when the name comes out empty.
    pub fn expand(
        &self,
        claims: &Map<String, Value>,
        mut origin: GrantOrigin,
    ) -> Result<Grant, DroppedGrant> {
        origin.role = self.role();
        let pattern = match &self.fixed {
            Some(pattern) => pattern.clone(),
            None => match self.expand_name(claims) {
                Ok(pattern) => pattern,
                Err(reason) => return Err(DroppedGrant { origin, reason }),
            },
        };
        Ok(Grant {
            effect: self.effect,
            operations: self.operations,
            pattern,
            origin,
        })
    }

    fn expand_name(&self, claims: &Map<String, Value>) -> Result<ResourcePattern, DropReason> {
        let mut name = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => name.push_str(text),
                Segment::Claim(path) => name.push_str(claim_value(path, claims)?),
            }
        }
        if name.is_empty() {
            return Err(DropReason::EmptyName);
        }
        // Cannot fail: the literal text was checked at parse time and every value just now.
        build_pattern(self.resource_type, self.pattern_type, name)
            .map_err(|_| DropReason::EmptyName)
    }
}

/// The resource as written in the configuration.
impl fmt::Display for GrantTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ops {
            GrantOps::Role(role) => write!(f, "{} role {role} on {}", self.effect, self.text),
            GrantOps::Operations(ops) => write!(f, "{} {ops} on {}", self.effect, self.text),
        }
    }
}

fn claim_value<'c>(
    path: &ClaimPath,
    claims: &'c Map<String, Value>,
) -> Result<&'c str, DropReason> {
    let value = path
        .lookup(claims)
        .ok_or_else(|| DropReason::MissingClaim {
            path: path.dotted.clone(),
        })?;
    let Value::String(s) = value else {
        return Err(DropReason::NotAString {
            path: path.dotted.clone(),
        });
    };
    if s.is_empty() {
        return Err(DropReason::EmptyValue {
            path: path.dotted.clone(),
        });
    }
    if let Some(character) = s
        .chars()
        .find(|c| matches!(c, '*' | '{' | '}') || c.is_control())
    {
        return Err(DropReason::ForbiddenCharacter {
            path: path.dotted.clone(),
            character,
        });
    }
    Ok(s)
}

fn build_pattern(
    resource_type: ResourceType,
    pattern_type: PatternType,
    name: String,
) -> Result<ResourcePattern, ParseError> {
    match pattern_type {
        PatternType::Literal => ResourcePattern::literal(resource_type, name),
        PatternType::Prefixed => ResourcePattern::prefixed(resource_type, name),
        PatternType::Wildcard => ResourcePattern::wildcard(resource_type),
    }
}

/// Splits a template name into literal text and placeholders, and finds its pattern type.
fn parse_name(resource: &str, name: &str) -> Result<(Vec<Segment>, PatternType), GrantError> {
    let bad = |reason: ParseError| GrantError::Resource {
        resource: clip(resource),
        reason,
    };
    let unbalanced = || GrantError::UnbalancedBrace {
        resource: clip(resource),
    };
    if name == "*" {
        return Ok((Vec::new(), PatternType::Wildcard));
    }
    let (body, pattern_type) = match name.strip_suffix('*') {
        Some(body) => (body, PatternType::Prefixed),
        None => (name, PatternType::Literal),
    };
    let mut segments = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        match rest.find(['{', '}']) {
            None => {
                check_name_chars(rest).map_err(bad)?;
                segments.push(Segment::Literal(rest.to_owned()));
                rest = "";
            }
            Some(at) => {
                let (text, tail) = rest.split_at(at);
                if !text.is_empty() {
                    check_name_chars(text).map_err(bad)?;
                    segments.push(Segment::Literal(text.to_owned()));
                }
                let Some(inner_and_more) = tail.strip_prefix('{') else {
                    return Err(unbalanced());
                };
                let close = inner_and_more.find(['{', '}']).ok_or_else(unbalanced)?;
                let (inner, after) = inner_and_more.split_at(close);
                let Some(after) = after.strip_prefix('}') else {
                    return Err(unbalanced());
                };
                segments.push(Segment::Claim(parse_placeholder(inner)?));
                rest = after;
            }
        }
    }
    if segments.is_empty() {
        return Err(bad(ParseError::EmptyName));
    }
    Ok((segments, pattern_type))
}

fn parse_placeholder(inner: &str) -> Result<ClaimPath, GrantError> {
    let placeholder = || clip(inner);
    let Some(dotted) = inner.strip_prefix("claims.") else {
        return Err(if inner == "claims" {
            GrantError::EmptyClaimPath {
                placeholder: placeholder(),
            }
        } else {
            GrantError::PlaceholderPrefix {
                placeholder: placeholder(),
            }
        });
    };
    let mut keys = Vec::new();
    for key in dotted.split('.') {
        if key.is_empty() {
            return Err(GrantError::EmptyClaimPath {
                placeholder: placeholder(),
            });
        }
        if key
            .chars()
            .any(|c| c == '*' || c.is_whitespace() || c.is_control())
        {
            return Err(GrantError::InvalidPlaceholder {
                placeholder: placeholder(),
            });
        }
        keys.push(key.to_owned());
    }
    Ok(ClaimPath {
        dotted: dotted.to_owned(),
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::Operation;

    fn read() -> OperationSet {
        OperationSet::of(&[Operation::Read])
    }

    fn parse(resource: &str) -> Result<GrantTemplate, GrantError> {
        GrantTemplate::parse(Effect::Allow, read(), resource)
    }

    #[test]
    fn syntax_errors() {
        let unbalanced = |r: &str| GrantError::UnbalancedBrace { resource: r.into() };
        for r in [
            "Topic:a{claims.b",
            "Topic:a}b",
            "Topic:{claims.{x}}",
            "Topic:{{claims.a}}",
        ] {
            assert_eq!(parse(r), Err(unbalanced(r)), "{r}");
        }
        assert_eq!(
            parse("Topic:{}"),
            Err(GrantError::PlaceholderPrefix {
                placeholder: String::new()
            })
        );
        assert_eq!(
            parse("Topic:{tenant}"),
            Err(GrantError::PlaceholderPrefix {
                placeholder: "tenant".into()
            })
        );
        for r in [
            "Topic:{claims}",
            "Topic:{claims.}",
            "Topic:{claims.a..b}",
            "Topic:{claims..a}",
        ] {
            assert!(
                matches!(parse(r), Err(GrantError::EmptyClaimPath { .. })),
                "{r}"
            );
        }
        assert!(matches!(
            parse("Topic:{claims.a b}"),
            Err(GrantError::InvalidPlaceholder { .. })
        ));
        assert!(matches!(
            parse("Topic:{claims.a*}"),
            Err(GrantError::InvalidPlaceholder { .. })
        ));
        assert!(matches!(
            parse("Topic:a*{claims.b}"),
            Err(GrantError::Resource {
                reason: ParseError::MisplacedWildcard,
                ..
            })
        ));
        assert!(matches!(
            parse("Cluster:{claims.c}"),
            Err(GrantError::Resource {
                reason: ParseError::ClusterName { .. },
                ..
            })
        ));
        assert!(matches!(
            parse("Topic:"),
            Err(GrantError::Resource {
                reason: ParseError::EmptyName,
                ..
            })
        ));
        assert_eq!(
            GrantTemplate::parse(Effect::Allow, OperationSet::EMPTY, "Topic:a"),
            Err(GrantError::NoOperations)
        );
        assert_eq!(
            GrantTemplate::parse(Effect::Allow, Role::DeveloperRead, "Cluster:kafka-cluster"),
            Err(GrantError::RoleGrantsNothing {
                role: Role::DeveloperRead,
                resource_type: ResourceType::Cluster
            })
        );
    }

    #[test]
    fn operations_kafka_does_not_define_on_the_type_are_refused() {
        use crate::authz::Operation;
        let write_group = GrantTemplate::parse(Effect::Allow, Operation::Write, "Group:g");
        assert_eq!(
            write_group,
            Err(GrantError::Resource {
                resource: "Group:g".to_owned(),
                reason: ParseError::NotApplicable {
                    operation: Operation::Write,
                    resource_type: ResourceType::Group
                }
            })
        );
        let mixed: OperationSet = [Operation::Read, Operation::IdempotentWrite]
            .into_iter()
            .collect();
        assert!(GrantTemplate::parse(Effect::Deny, mixed, "Topic:t").is_err());
        // What Kafka defines, and `All`, are accepted on every type.
        for (op, resource) in [
            (Operation::Read, "Group:g"),
            (Operation::All, "Group:g-*"),
            (Operation::IdempotentWrite, "Cluster:kafka-cluster"),
            (Operation::Write, "TransactionalId:tx"),
        ] {
            assert!(
                GrantTemplate::parse(Effect::Allow, op, resource).is_ok(),
                "{op} {resource}"
            );
        }
    }

    #[test]
    fn pattern_type_comes_from_the_template() {
        let t = parse("Topic:{claims.t}*").unwrap();
        assert_eq!(t.pattern_type(), PatternType::Prefixed);
        let t = parse("Topic:*").unwrap();
        assert_eq!(t.pattern_type(), PatternType::Wildcard);
        let t = parse("Topic:x-{claims.a.b}-{claims.c}").unwrap();
        assert_eq!(t.pattern_type(), PatternType::Literal);
        assert_eq!(t.claims().collect::<Vec<_>>(), ["a.b", "c"]);
    }

    #[test]
    fn lookup_follows_objects_only() {
        let t = parse("Topic:{claims.org.team}").unwrap();
        let claims = serde_json::json!({"org": {"team": "blue"}});
        let g = t
            .expand(claims.as_object().unwrap(), GrantOrigin::new("p", 0))
            .unwrap();
        assert_eq!(g.pattern.name(), "blue");
        let claims = serde_json::json!({"org": "flat"});
        let err = t
            .expand(claims.as_object().unwrap(), GrantOrigin::new("p", 0))
            .unwrap_err();
        assert_eq!(
            err.reason,
            DropReason::MissingClaim {
                path: "org.team".into()
            }
        );
    }

    #[test]
    fn messages() {
        let err = DropReason::ForbiddenCharacter {
            path: "t".into(),
            character: '\n',
        };
        assert_eq!(
            err.to_string(),
            "claim `t` contains the forbidden character `\\n`"
        );
        let err = parse("Topic:{tenant}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "placeholder `{tenant}` must name a claim as `{claims.NAME}`"
        );
        let t = GrantTemplate::parse(Effect::Deny, Role::DeveloperWrite, "Topic:a-*").unwrap();
        assert_eq!(t.to_string(), "deny role DeveloperWrite on Topic:a-*");
    }
}
