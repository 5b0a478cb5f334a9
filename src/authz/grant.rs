//! A grant: an allow or deny of operations on a resource pattern, with where it came from.

use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::operation::OperationSet;
use super::resource::{PatternType, Resource, ResourcePattern, ResourceType};
use super::role::Role;
use crate::error::clip;

/// Whether a grant allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// `allow`.
    Allow,
    /// `deny`: beats any allow of the same operation.
    Deny,
}

impl Effect {
    /// `allow` or `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Effect {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "allow" => Ok(Effect::Allow),
            "deny" => Ok(Effect::Deny),
            _ => Err(ParseError::UnknownEffect { name: clip(s) }),
        }
    }
}

/// Which configuration entry a grant came from: for diagnostics, and to name the grant that
/// decided.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct GrantOrigin {
    /// The identity pool's id.
    pub pool: String,
    /// The index of the grant entry in the pool's `grants` list, from 0 (shown from 1, as
    /// the configuration reads: `grant 1` is the first `[[pools.grants]]` of the pool).
    pub index: usize,
    /// The role the entry named, if it named one instead of operations.
    pub role: Option<Role>,
}

impl GrantOrigin {
    /// The origin of entry `index` of pool `pool`, without a role (a
    /// [`GrantTemplate`](super::GrantTemplate) fills that in when it expands).
    pub fn new(pool: impl Into<String>, index: usize) -> Self {
        GrantOrigin {
            pool: pool.into(),
            index,
            role: None,
        }
    }
}

/// `grant 2 of pool `analytics` (role DeveloperRead)`.
impl fmt::Display for GrantOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "grant {} of pool `{}`", self.index + 1, self.pool)?;
        if let Some(role) = self.role {
            write!(f, " (role {role})")?;
        }
        Ok(())
    }
}

/// One permission a session holds: allow or deny `operations` on the resources `pattern`
/// matches.
///
/// Grants usually come from [`GrantTemplate::expand`](super::GrantTemplate::expand); they can
/// also be built directly (the pattern is always a valid one).
///
/// ```
/// use poolgate::authz::{Effect, Grant, GrantOrigin, Operation, OperationSet};
/// let grant = Grant {
///     effect: Effect::Allow,
///     operations: OperationSet::of(&[Operation::Read]),
///     pattern: "Topic:orders-*".parse().unwrap(),
///     origin: GrantOrigin::new("analytics", 0),
/// };
/// assert_eq!(grant.to_string(), "allow Read on Topic:orders-*");
/// assert_eq!(
///     serde_json::to_value(grant.view()).unwrap(),
///     serde_json::json!({
///         "effect": "allow", "operations": ["Read"], "resource_type": "Topic",
///         "pattern": "prefixed", "name": "orders-"
///     })
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Grant {
    /// Allow or deny.
    pub effect: Effect,
    /// The operations allowed or denied (a role's operations for the pattern's type).
    pub operations: OperationSet,
    /// The resources the grant applies to.
    pub pattern: ResourcePattern,
    /// Where the grant came from.
    pub origin: GrantOrigin,
}

impl Grant {
    /// Whether the grant's pattern matches `resource` (whatever the operation).
    pub fn matches(&self, resource: &Resource<'_>) -> bool {
        self.pattern.matches(resource)
    }

    /// A serializable view for JSON output (the origin left out).
    pub fn view(&self) -> GrantView<'_> {
        GrantView {
            effect: self.effect,
            operations: self.operations,
            resource_type: self.pattern.resource_type(),
            pattern: self.pattern.pattern_type(),
            name: self.pattern.name(),
        }
    }
}

/// `allow Read,Describe on Topic:orders-*`.
impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} on {}", self.effect, self.operations, self.pattern)
    }
}

/// A grant as JSON: `{"effect":"allow","operations":["Read"],"resource_type":"Topic",
/// "pattern":"prefixed","name":"orders-"}`; a prefixed name is given without its `*`, a
/// wildcard's name is `*`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GrantView<'a> {
    /// `allow` or `deny`.
    pub effect: Effect,
    /// Operation names, in the fixed order.
    pub operations: OperationSet,
    /// `Topic`, `Group`, `Cluster` or `TransactionalId`.
    pub resource_type: ResourceType,
    /// `literal`, `prefixed` or `wildcard`.
    pub pattern: PatternType,
    /// The name, the prefix without `*`, or `*`.
    pub name: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_names() {
        assert_eq!("allow".parse::<Effect>(), Ok(Effect::Allow));
        assert_eq!("deny".parse::<Effect>(), Ok(Effect::Deny));
        assert!("Allow".parse::<Effect>().is_err());
        assert_eq!(serde_json::to_string(&Effect::Deny).unwrap(), r#""deny""#);
    }

    #[test]
    fn origin_display() {
        // Entry 2 counted from 0 is the third grant of the pool, as a reader counts.
        let mut origin = GrantOrigin::new("p", 2);
        assert_eq!(origin.to_string(), "grant 3 of pool `p`");
        origin.role = Some(Role::DeveloperRead);
        assert_eq!(
            origin.to_string(),
            "grant 3 of pool `p` (role DeveloperRead)"
        );
        assert_eq!(
            serde_json::to_value(&origin).unwrap(),
            serde_json::json!({"pool": "p", "index": 2, "role": "DeveloperRead"})
        );
    }
}
