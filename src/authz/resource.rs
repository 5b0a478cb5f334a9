//! Kafka resources: the types, the patterns grants name, and the concrete resources requests
//! touch.

use std::fmt;
use std::str::FromStr;

use super::{Operation, OperationSet, ParseError};
use crate::error::clip;

/// The one name Kafka gives the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// A Kafka resource type, named as Confluent's role bindings name it.
///
/// ```
/// use poolgate::authz::ResourceType;
/// assert_eq!("TransactionalId".parse::<ResourceType>().unwrap(), ResourceType::TransactionalId);
/// assert_eq!(ResourceType::Group.to_string(), "Group");
/// assert!("topic".parse::<ResourceType>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ResourceType {
    /// `Topic`.
    Topic,
    /// `Group`: a consumer group.
    Group,
    /// `Cluster`: the cluster itself, always named `kafka-cluster`.
    Cluster,
    /// `TransactionalId`: a transactional producer's id.
    TransactionalId,
}

impl ResourceType {
    /// Every resource type.
    pub const VALUES: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];

    /// The type's name, as accepted by [`FromStr`].
    pub const fn as_str(self) -> &'static str {
        match self {
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
        }
    }

    /// The operations Kafka defines on this resource type, `All` aside (which every type
    /// takes): Apache Kafka's `AclEntry.supportedOperations`, as of Kafka 4 (groups gained
    /// `DescribeConfigs` and `AlterConfigs` with group configurations). Any other operation on
    /// this type is not a question a broker ever asks.
    ///
    /// ```
    /// use poolgate::authz::{Operation, ResourceType};
    /// assert!(ResourceType::Group.supports(Operation::Read));
    /// assert!(!ResourceType::Group.supports(Operation::Write));
    /// assert!(ResourceType::Group.supports(Operation::All));
    /// ```
    pub const fn operations(self) -> OperationSet {
        use Operation::{
            Alter, AlterConfigs, ClusterAction, Create, Delete, Describe, DescribeConfigs,
            IdempotentWrite, Read, Write,
        };
        OperationSet::of(match self {
            ResourceType::Topic => &[
                Read,
                Write,
                Create,
                Delete,
                Alter,
                Describe,
                DescribeConfigs,
                AlterConfigs,
            ],
            ResourceType::Group => &[Read, Delete, Describe, DescribeConfigs, AlterConfigs],
            ResourceType::Cluster => &[
                Create,
                Alter,
                Describe,
                ClusterAction,
                DescribeConfigs,
                AlterConfigs,
                IdempotentWrite,
            ],
            ResourceType::TransactionalId => &[Write, Describe],
        })
    }

    /// Whether Kafka defines `op` on this type ([`operations`](Self::operations), or `All`).
    pub const fn supports(self, op: Operation) -> bool {
        matches!(op, Operation::All) || self.operations().contains(op)
    }

    /// `op` if Kafka defines it on this type, else an error that lists the ones it does.
    ///
    /// # Errors
    /// [`ParseError::NotApplicable`].
    pub fn check(self, op: Operation) -> Result<Operation, ParseError> {
        if self.supports(op) {
            Ok(op)
        } else {
            Err(ParseError::NotApplicable {
                operation: op,
                resource_type: self,
            })
        }
    }

    /// `topics`, `groups`, `the cluster`, `transactional ids`: the type in a sentence.
    pub(crate) const fn plural(self) -> &'static str {
        match self {
            ResourceType::Topic => "topics",
            ResourceType::Group => "groups",
            ResourceType::Cluster => "the cluster",
            ResourceType::TransactionalId => "transactional ids",
        }
    }

    /// A dense index, for per-type buckets.
    pub(crate) const fn index(self) -> usize {
        match self {
            ResourceType::Topic => 0,
            ResourceType::Group => 1,
            ResourceType::Cluster => 2,
            ResourceType::TransactionalId => 3,
        }
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ResourceType {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ResourceType::VALUES
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| ParseError::UnknownResourceType { name: clip(s) })
    }
}

/// How a [`ResourcePattern`]'s name matches a resource's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PatternType {
    /// The names are equal (`Topic:orders`).
    Literal,
    /// The resource's name starts with the pattern's name (`Topic:orders-*`).
    Prefixed,
    /// Any name (`Topic:*`).
    Wildcard,
}

impl PatternType {
    /// `literal`, `prefixed` or `wildcard`.
    pub const fn as_str(self) -> &'static str {
        match self {
            PatternType::Literal => "literal",
            PatternType::Prefixed => "prefixed",
            PatternType::Wildcard => "wildcard",
        }
    }
}

impl fmt::Display for PatternType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for PatternType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The resources a grant applies to, written `TYPE:NAME`.
///
/// - `Topic:orders` is literal, `Topic:orders-*` prefixed (the name is stored without the
///   `*`), `Topic:*` a wildcard (its name is `*`).
/// - The cluster is only ever `Cluster:kafka-cluster`, as in Kafka.
/// - A `*` anywhere but at the end, an empty name, `{` or `}` (reserved for
///   [`GrantTemplate`](super::GrantTemplate) placeholders), a control character or an unknown
///   type is a [`ParseError`].
///
/// The fields are private so that every pattern is a valid one: a prefixed pattern with an
/// empty prefix would silently match everything.
///
/// ```
/// use poolgate::authz::{PatternType, Resource, ResourcePattern, ResourceType};
/// let p: ResourcePattern = "Topic:orders-*".parse().unwrap();
/// assert_eq!(p.resource_type(), ResourceType::Topic);
/// assert_eq!(p.pattern_type(), PatternType::Prefixed);
/// assert_eq!(p.name(), "orders-");
/// assert_eq!(p.to_string(), "Topic:orders-*");
/// assert!(p.matches(&Resource::topic("orders-eu")));
/// assert!(!p.matches(&Resource::group("orders-eu")));
/// assert!("Topic:ord*ers".parse::<ResourcePattern>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourcePattern {
    resource_type: ResourceType,
    pattern_type: PatternType,
    name: String,
}

impl ResourcePattern {
    /// A literal pattern: exactly the resource `name`.
    ///
    /// # Errors
    /// [`ParseError`] for an empty name, a `*`, `{`, `}` or control character in it, or a
    /// cluster name other than `kafka-cluster`.
    pub fn literal(
        resource_type: ResourceType,
        name: impl Into<String>,
    ) -> Result<Self, ParseError> {
        let name = name.into();
        check_name(&name)?;
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(ParseError::ClusterName { name: clip(&name) });
        }
        Ok(ResourcePattern {
            resource_type,
            pattern_type: PatternType::Literal,
            name,
        })
    }

    /// A prefixed pattern: every resource whose name starts with `prefix` (given without `*`).
    ///
    /// # Errors
    /// [`ParseError`] for an empty prefix, a `*`, `{`, `}` or control character in it, or the
    /// cluster type (whose only name is `kafka-cluster`).
    pub fn prefixed(
        resource_type: ResourceType,
        prefix: impl Into<String>,
    ) -> Result<Self, ParseError> {
        let name = prefix.into();
        check_name(&name)?;
        if resource_type == ResourceType::Cluster {
            return Err(ParseError::ClusterName {
                name: clip(&format!("{name}*")),
            });
        }
        Ok(ResourcePattern {
            resource_type,
            pattern_type: PatternType::Prefixed,
            name,
        })
    }

    /// A wildcard pattern: every resource of the type.
    ///
    /// # Errors
    /// [`ParseError::ClusterName`] for the cluster type (use `Cluster:kafka-cluster`).
    pub fn wildcard(resource_type: ResourceType) -> Result<Self, ParseError> {
        if resource_type == ResourceType::Cluster {
            return Err(ParseError::ClusterName { name: "*".into() });
        }
        Ok(ResourcePattern {
            resource_type,
            pattern_type: PatternType::Wildcard,
            name: "*".into(),
        })
    }

    /// The resource type the pattern applies to.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// Literal, prefixed or wildcard.
    pub fn pattern_type(&self) -> PatternType {
        self.pattern_type
    }

    /// The name (literal), the prefix without its `*` (prefixed), or `*` (wildcard).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the pattern applies to `resource`: same type, and literal = equal name,
    /// prefixed = the name starts with the prefix, wildcard = any name. Comparison is by
    /// bytes, case-sensitive, as in Kafka.
    pub fn matches(&self, resource: &Resource<'_>) -> bool {
        self.resource_type == resource.resource_type
            && match self.pattern_type {
                PatternType::Literal => resource.name == self.name,
                PatternType::Prefixed => resource.name.starts_with(self.name.as_str()),
                PatternType::Wildcard => true,
            }
    }
}

/// Rejects what may not appear in a pattern's name (its `*` already removed).
pub(super) fn check_name(name: &str) -> Result<(), ParseError> {
    if name.is_empty() {
        return Err(ParseError::EmptyName);
    }
    check_name_chars(name)
}

/// The character rules alone: no `*`, braces or control characters.
pub(super) fn check_name_chars(name: &str) -> Result<(), ParseError> {
    for c in name.chars() {
        match c {
            '*' => return Err(ParseError::MisplacedWildcard),
            '{' | '}' => return Err(ParseError::Brace),
            c if c.is_control() => return Err(ParseError::ControlCharacter),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `TYPE:NAME` at the first `:` and parses the type.
pub(super) fn split_type(input: &str) -> Result<(ResourceType, &str), ParseError> {
    let (ty, name) = input
        .split_once(':')
        .ok_or_else(|| ParseError::MissingSeparator { input: clip(input) })?;
    Ok((ty.parse()?, name))
}

impl FromStr for ResourcePattern {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (resource_type, name) = split_type(s)?;
        if name == "*" {
            ResourcePattern::wildcard(resource_type)
        } else if let Some(prefix) = name.strip_suffix('*') {
            ResourcePattern::prefixed(resource_type, prefix)
        } else {
            ResourcePattern::literal(resource_type, name)
        }
    }
}

/// `TYPE:NAME`, in the syntax [`FromStr`] accepts.
impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pattern_type {
            PatternType::Literal => write!(f, "{}:{}", self.resource_type, self.name),
            PatternType::Prefixed => write!(f, "{}:{}*", self.resource_type, self.name),
            PatternType::Wildcard => write!(f, "{}:*", self.resource_type),
        }
    }
}

/// A concrete resource a request touches: a type and a name, borrowed from the request.
///
/// The name is taken as it is; no character in it is special. [`Resource::parse`] (for tools
/// and tests) is stricter: no `*`, no control characters, and the cluster is `kafka-cluster`.
///
/// ```
/// use poolgate::authz::{Resource, ResourceType};
/// let r = Resource::parse("Group:billing").unwrap();
/// assert_eq!(r, Resource::group("billing"));
/// assert_eq!(r.resource_type, ResourceType::Group);
/// assert_eq!(Resource::cluster().to_string(), "Cluster:kafka-cluster");
/// assert!(Resource::parse("Topic:*").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Resource<'a> {
    /// The resource's type.
    pub resource_type: ResourceType,
    /// The resource's name.
    pub name: &'a str,
}

impl<'a> Resource<'a> {
    /// A resource of any type.
    pub const fn new(resource_type: ResourceType, name: &'a str) -> Self {
        Resource {
            resource_type,
            name,
        }
    }

    /// A topic.
    pub const fn topic(name: &'a str) -> Self {
        Resource::new(ResourceType::Topic, name)
    }

    /// A consumer group.
    pub const fn group(name: &'a str) -> Self {
        Resource::new(ResourceType::Group, name)
    }

    /// A transactional id.
    pub const fn transactional_id(name: &'a str) -> Self {
        Resource::new(ResourceType::TransactionalId, name)
    }

    /// Parses `TYPE:NAME`, borrowing the name from `input`.
    ///
    /// # Errors
    /// [`ParseError`] for a missing `:`, an unknown type, an empty name, a `*` or control
    /// character in the name, or a cluster name other than `kafka-cluster`.
    pub fn parse(input: &'a str) -> Result<Self, ParseError> {
        let (resource_type, name) = split_type(input)?;
        if name.is_empty() {
            return Err(ParseError::EmptyName);
        }
        if name.contains('*') {
            return Err(ParseError::WildcardInResource);
        }
        if name.chars().any(char::is_control) {
            return Err(ParseError::ControlCharacter);
        }
        if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
            return Err(ParseError::ClusterName { name: clip(name) });
        }
        Ok(Resource::new(resource_type, name))
    }
}

impl Resource<'static> {
    /// The cluster, `Cluster:kafka-cluster`.
    pub const fn cluster() -> Self {
        Resource::new(ResourceType::Cluster, CLUSTER_NAME)
    }
}

/// `TYPE:NAME`.
impl fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.resource_type, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's `AclEntry.supportedOperations`, row by row, as Kafka writes it.
    #[test]
    fn operations_kafka_defines_per_type() {
        use Operation::*;
        let table: [(ResourceType, &[Operation]); 4] = [
            (
                ResourceType::Topic,
                &[
                    Read,
                    Write,
                    Create,
                    Describe,
                    Delete,
                    Alter,
                    DescribeConfigs,
                    AlterConfigs,
                ],
            ),
            (
                ResourceType::Group,
                &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
            ),
            (
                ResourceType::Cluster,
                &[
                    Create,
                    ClusterAction,
                    DescribeConfigs,
                    AlterConfigs,
                    IdempotentWrite,
                    Alter,
                    Describe,
                ],
            ),
            (ResourceType::TransactionalId, &[Describe, Write]),
        ];
        for (ty, ops) in table {
            for op in Operation::VALUES {
                let want = op == All || ops.contains(&op);
                assert_eq!(ty.supports(op), want, "{op} on {ty}");
                assert_eq!(ty.check(op).is_ok(), want, "{op} on {ty}");
            }
            assert_eq!(ty.operations().len(), ops.len(), "{ty}");
        }
        assert_eq!(
            ResourceType::Group.check(Write).unwrap_err().to_string(),
            "Write does not apply to groups; valid operations for Group: Read, Delete, Describe, \
             DescribeConfigs, AlterConfigs (or All)"
        );
        assert_eq!(
            ResourceType::Cluster.check(Read).unwrap_err().to_string(),
            "Read does not apply to the cluster; valid operations for Cluster: Create, Alter, \
             Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite (or All)"
        );
    }

    fn pat(s: &str) -> ResourcePattern {
        s.parse().unwrap()
    }

    #[test]
    fn pattern_syntax() {
        let cases = [
            (
                "Topic:orders",
                ResourceType::Topic,
                PatternType::Literal,
                "orders",
            ),
            (
                "Topic:orders-*",
                ResourceType::Topic,
                PatternType::Prefixed,
                "orders-",
            ),
            ("Topic:*", ResourceType::Topic, PatternType::Wildcard, "*"),
            ("Group:g", ResourceType::Group, PatternType::Literal, "g"),
            (
                "TransactionalId:tx-*",
                ResourceType::TransactionalId,
                PatternType::Prefixed,
                "tx-",
            ),
            (
                "Cluster:kafka-cluster",
                ResourceType::Cluster,
                PatternType::Literal,
                "kafka-cluster",
            ),
            (
                "Topic:a:b",
                ResourceType::Topic,
                PatternType::Literal,
                "a:b",
            ),
            (
                "Topic:ünï",
                ResourceType::Topic,
                PatternType::Literal,
                "ünï",
            ),
        ];
        for (input, ty, pt, name) in cases {
            let p = pat(input);
            assert_eq!(
                (p.resource_type(), p.pattern_type(), p.name()),
                (ty, pt, name),
                "{input}"
            );
            assert_eq!(p.to_string(), input);
        }
    }

    #[test]
    fn pattern_errors() {
        let cases: [(&str, ParseError); 11] = [
            (
                "orders",
                ParseError::MissingSeparator {
                    input: "orders".into(),
                },
            ),
            (
                "Topics:a",
                ParseError::UnknownResourceType {
                    name: "Topics".into(),
                },
            ),
            (
                "topic:a",
                ParseError::UnknownResourceType {
                    name: "topic".into(),
                },
            ),
            ("Topic:", ParseError::EmptyName),
            ("Topic:a*b", ParseError::MisplacedWildcard),
            ("Topic:*a", ParseError::MisplacedWildcard),
            ("Topic:**", ParseError::MisplacedWildcard),
            ("Topic:a{b", ParseError::Brace),
            ("Topic:a\nb", ParseError::ControlCharacter),
            ("Cluster:*", ParseError::ClusterName { name: "*".into() }),
            (
                "Cluster:other",
                ParseError::ClusterName {
                    name: "other".into(),
                },
            ),
        ];
        for (input, err) in cases {
            assert_eq!(input.parse::<ResourcePattern>(), Err(err), "{input}");
        }
        assert!("Cluster:kafka-*".parse::<ResourcePattern>().is_err());
        assert!(ResourcePattern::prefixed(ResourceType::Topic, "").is_err());
    }

    #[test]
    fn matching() {
        let topic = Resource::topic("orders-eu");
        assert!(pat("Topic:orders-eu").matches(&topic));
        assert!(!pat("Topic:orders").matches(&topic));
        assert!(pat("Topic:orders").matches(&Resource::topic("orders")));
        assert!(pat("Topic:orders-*").matches(&topic));
        assert!(pat("Topic:orders-eu*").matches(&topic));
        assert!(!pat("Topic:Orders-*").matches(&topic));
        assert!(pat("Topic:*").matches(&topic));
        assert!(pat("Topic:*").matches(&Resource::topic("")));
        assert!(!pat("Group:*").matches(&topic));
        assert!(pat("Cluster:kafka-cluster").matches(&Resource::cluster()));
    }

    #[test]
    fn concrete_resources() {
        assert_eq!(
            Resource::parse("Topic:a*"),
            Err(ParseError::WildcardInResource)
        );
        assert_eq!(Resource::parse("Topic:"), Err(ParseError::EmptyName));
        assert_eq!(
            Resource::parse("Cluster:x"),
            Err(ParseError::ClusterName { name: "x".into() })
        );
        assert_eq!(
            Resource::parse("Cluster:kafka-cluster"),
            Ok(Resource::cluster())
        );
        assert_eq!(Resource::parse("Topic:a{b}"), Ok(Resource::topic("a{b}")));
        assert_eq!(
            Resource::transactional_id("t").to_string(),
            "TransactionalId:t"
        );
    }
}
