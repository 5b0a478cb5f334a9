//! Owns permissions: Kafka resources, operations, grants, roles and the authorization decision.
//!
//! Pure: no I/O, no clock, no global state. It does not read tokens: grant templates expand
//! over claims that verification already produced. Kafka's ACL semantics are in
//! [`Permissions`], Confluent's predefined roles in [`Role`], claim placeholders in
//! [`GrantTemplate`].
//!
//! ```
//! use poolgate::authz::{Decision, Effect, GrantOrigin, GrantTemplate, Permissions, Resource, Role};
//! use poolgate::authz::Operation::{Read, Write};
//!
//! // Compiled once, when the configuration loads.
//! let template = GrantTemplate::parse(
//!     Effect::Allow,
//!     Role::DeveloperRead,
//!     "Topic:tenant-{claims.tenant}-*",
//! )?;
//!
//! // Expanded once per session, over the verified token's claims.
//! let claims = serde_json::json!({"sub": "svc-7", "tenant": "acme"});
//! let grant = template.expand(claims.as_object().unwrap(), GrantOrigin::new("tenants", 0))?;
//! let permissions = Permissions::new(vec![grant]);
//!
//! // Asked on every request.
//! let topic = Resource::topic("tenant-acme-orders");
//! assert_eq!(permissions.authorize(Read, &topic).decision, Decision::Allow);
//! assert_eq!(permissions.authorize(Write, &topic).decision, Decision::Deny);
//! let other = Resource::topic("tenant-umbrella-orders");
//! assert_eq!(permissions.authorize(Read, &other).decision, Decision::Deny);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod grant;
mod operation;
mod permissions;
mod resource;
mod role;
mod template;

pub use grant::{Effect, Grant, GrantOrigin, GrantView};
pub use operation::{Operation, OperationSet, OperationSetIter};
pub use permissions::{Authorization, AuthzReason, Decision, Permissions};
pub use resource::{CLUSTER_NAME, PatternType, Resource, ResourcePattern, ResourceType};
pub use role::Role;
pub use template::{DropReason, DroppedGrant, GrantError, GrantOps, GrantTemplate};

/// A name that is not a resource type, operation, role or effect, or a `TYPE:NAME` that is not
/// a valid resource or pattern.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// No `:` between the type and the name.
    #[error("`{input}` is not of the form `TYPE:NAME`")]
    MissingSeparator {
        /// The input (clipped).
        input: String,
    },
    /// Not one of `Topic`, `Group`, `Cluster`, `TransactionalId`.
    #[error("unknown resource type `{name}` ({})", expected(name, ResourceType::VALUES.map(ResourceType::as_str)))]
    UnknownResourceType {
        /// The name given (clipped).
        name: String,
    },
    /// Not the name of an [`Operation`].
    #[error("unknown operation `{name}` ({})", expected(name, Operation::VALUES.map(Operation::as_str)))]
    UnknownOperation {
        /// The name given (clipped).
        name: String,
    },
    /// Not the name of a [`Role`].
    #[error("unknown role `{name}` ({})", expected(name, Role::VALUES.map(Role::as_str)))]
    UnknownRole {
        /// The name given (clipped).
        name: String,
    },
    /// Neither `allow` nor `deny`.
    #[error("unknown effect `{name}` (expected allow or deny)")]
    UnknownEffect {
        /// The name given (clipped).
        name: String,
    },
    /// An operation Kafka does not define on the resource type (`Write` on a `Group`).
    #[error(
        "{operation} does not apply to {}; valid operations for {resource_type}: {} (or All)",
        resource_type.plural(),
        resource_type.operations().iter().map(Operation::as_str).collect::<Vec<_>>().join(", ")
    )]
    NotApplicable {
        /// The operation asked about.
        operation: Operation,
        /// The resource's type.
        resource_type: ResourceType,
    },
    /// The resource name is empty.
    #[error("the resource name is empty")]
    EmptyName,
    /// A `*` that is neither the whole name (wildcard) nor its last character (prefix).
    #[error("`*` may only end a resource name (prefix) or be the whole name (wildcard)")]
    MisplacedWildcard,
    /// A `*` in the name of a concrete resource.
    #[error("a concrete resource name cannot contain `*`")]
    WildcardInResource,
    /// A cluster resource named other than `kafka-cluster` (or a cluster pattern that is not
    /// literal).
    #[error("the cluster resource is named `kafka-cluster`, not `{name}`")]
    ClusterName {
        /// The name given (clipped).
        name: String,
    },
    /// A control character in the name.
    #[error("the resource name contains a control character")]
    ControlCharacter,
    /// A `{` or `}` in a resource pattern: only grant templates use them, for placeholders.
    #[error("the resource name contains `{{` or `}}`, which only grant templates may use")]
    Brace,
}

/// `expected Read, Write or All`, and `did you mean `Read`?` when `name` differs from one only
/// in case (names are case-sensitive, as Kafka's are).
fn expected<const N: usize>(name: &str, values: [&str; N]) -> String {
    let mut out = String::from("expected ");
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push_str(if i + 1 == N { " or " } else { ", " });
        }
        out.push_str(v);
    }
    if let Some(v) = values.iter().find(|v| v.eq_ignore_ascii_case(name)) {
        out.push_str(&format!("; did you mean `{v}`?"));
    }
    out
}

/// Serializes as the name, deserializes through `FromStr`.
macro_rules! serde_by_name {
    ($($ty:ty),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = String::deserialize(d)?;
                name.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}

serde_by_name!(Operation, ResourceType, Role, Effect);

impl serde::Serialize for Decision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_deserialize_through_from_str() {
        let op: Operation = serde_json::from_str(r#""IdempotentWrite""#).unwrap();
        assert_eq!(op, Operation::IdempotentWrite);
        let role: Role = serde_json::from_str(r#""CloudClusterAdmin""#).unwrap();
        assert_eq!(role, Role::ClusterAdmin);
        let err = serde_json::from_str::<ResourceType>(r#""Topics""#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown resource type `Topics` (expected Topic, Group, Cluster or TransactionalId)"
        );
        assert_eq!(
            "Wrte".parse::<Operation>().unwrap_err().to_string(),
            "unknown operation `Wrte` (expected Read, Write, Create, Delete, Alter, Describe, \
             ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All)"
        );
        assert!(
            "READ"
                .parse::<Operation>()
                .unwrap_err()
                .to_string()
                .ends_with("or All; did you mean `Read`?)")
        );
        assert_eq!(
            "Owner".parse::<Role>().unwrap_err().to_string(),
            "unknown role `Owner` (expected DeveloperRead, DeveloperWrite, DeveloperManage, \
             ResourceOwner or ClusterAdmin)"
        );
        assert!(
            "topic"
                .parse::<ResourceType>()
                .unwrap_err()
                .to_string()
                .ends_with("did you mean `Topic`?)")
        );
        assert_eq!(
            serde_json::to_string(&Decision::Allow).unwrap(),
            r#""allow""#
        );
    }
}
