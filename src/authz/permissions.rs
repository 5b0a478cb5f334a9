//! A session's permissions and the per-request authorization decision, with Kafka's rules.

use std::fmt;

use super::grant::{Effect, Grant};
use super::operation::{Operation, OperationSet};
use super::resource::{CLUSTER_NAME, PatternType, Resource, ResourcePattern, ResourceType};

/// The outcome of an authorization question. Exhaustive on purpose: there is no third answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// The request may proceed.
    Allow,
    /// The request is refused.
    Deny,
}

impl Decision {
    /// `allow` or `deny`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the decision came out as it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthzReason {
    /// An allow grant names the operation, or `All`.
    AllowedBy,
    /// An allow grant names this other operation, which implies the one asked for (Read,
    /// Write, Delete or Alter imply Describe; AlterConfigs implies DescribeConfigs; Write on a
    /// topic implies IdempotentWrite on the cluster).
    ImpliedBy(Operation),
    /// A deny grant names the operation, or `All`.
    DeniedBy,
    /// No grant allows the operation on the resource: denied by default.
    NoGrant,
}

impl fmt::Display for AuthzReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthzReason::AllowedBy => f.write_str("allowed by"),
            AuthzReason::ImpliedBy(op) => write!(f, "implied by {op} allowed by"),
            AuthzReason::DeniedBy => f.write_str("denied by"),
            AuthzReason::NoGrant => f.write_str("no grant allows it"),
        }
    }
}

/// A decision, the grant that decided it (none when nothing matched) and the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authorization<'p> {
    /// Allow or deny.
    pub decision: Decision,
    /// The grant that decided: the first matching deny, else the first allow that names the
    /// operation, else the first that implies it (in the order the grants were given).
    pub grant: Option<&'p Grant>,
    /// Why.
    pub reason: AuthzReason,
}

impl Authorization<'_> {
    /// Whether the decision is [`Decision::Allow`].
    pub const fn is_allowed(&self) -> bool {
        matches!(self.decision, Decision::Allow)
    }
}

/// `deny: denied by grant 1 of pool `p` (deny Write on Topic:orders)`.
impl fmt::Display for Authorization<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.decision, self.reason)?;
        if let Some(grant) = self.grant {
            write!(f, " {} ({grant})", grant.origin)?;
        }
        Ok(())
    }
}

/// The grants a session holds, indexed for the per-request question "may it do this?".
///
/// Kafka's rules (`AclAuthorizer` and KRaft's `StandardAuthorizer`):
/// - a grant applies to a resource when its pattern matches (same type; literal = equal
///   name, prefixed = the name starts with the prefix, wildcard = any name);
/// - a matching deny that names the operation, or `All`, denies, whatever allows there are;
/// - otherwise a matching allow that names the operation, or `All`, allows;
/// - an allow of Read, Write, Delete or Alter also allows Describe, and an allow of
///   AlterConfigs also allows DescribeConfigs; a deny implies nothing (a deny of Write does not
///   deny Describe);
/// - IdempotentWrite on the cluster is also allowed when Write is allowed on at least one
///   topic (KIP-679: Kafka's `authorizeByResourceType`, where a wildcard deny of Write shadows
///   every topic, a prefixed deny shadows the literal and prefixed allows it covers, and a
///   literal deny the equal literal allow), unless IdempotentWrite or All is denied on the
///   cluster;
/// - otherwise the request is denied.
///
/// Asking for `All` itself is answered as Kafka does: only a grant naming `All` matches it.
///
/// [`authorize`](Self::authorize) does not allocate; it scans only the grants of the
/// resource's type.
///
/// ```
/// use poolgate::authz::{
///     AuthzReason, Decision, Effect, GrantOrigin, GrantTemplate, Operation, OperationSet,
///     Permissions, Resource, Role,
/// };
/// let claims = serde_json::Map::new();
/// let entries = [
///     GrantTemplate::parse(Effect::Allow, Role::DeveloperWrite, "Topic:orders-*").unwrap(),
///     GrantTemplate::parse(Effect::Deny, Operation::Write, "Topic:orders-audit").unwrap(),
/// ];
/// let perms: Permissions = entries
///     .iter()
///     .enumerate()
///     .map(|(i, t)| t.expand(&claims, GrantOrigin::new("producers", i)).unwrap())
///     .collect();
///
/// let a = perms.authorize(Operation::Write, &Resource::topic("orders-eu"));
/// assert_eq!((a.decision, a.reason), (Decision::Allow, AuthzReason::AllowedBy));
///
/// let a = perms.authorize(Operation::Write, &Resource::topic("orders-audit"));
/// assert_eq!((a.decision, a.reason), (Decision::Deny, AuthzReason::DeniedBy));
/// assert_eq!(a.grant.unwrap().origin.index, 1);
///
/// // A deny of Write does not deny Describe, which the role allows.
/// let a = perms.authorize(Operation::Describe, &Resource::topic("orders-audit"));
/// assert_eq!(a.decision, Decision::Allow);
///
/// // Write on some topic implies IdempotentWrite on the cluster.
/// let a = perms.authorize(Operation::IdempotentWrite, &Resource::cluster());
/// assert_eq!(a.reason, AuthzReason::ImpliedBy(Operation::Write));
///
/// let a = perms.authorize(Operation::Read, &Resource::topic("orders-eu"));
/// assert_eq!((a.decision, a.reason), (Decision::Deny, AuthzReason::NoGrant));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Permissions {
    grants: Vec<Grant>,
    /// Indices into `grants`, one list per resource type, in grant order.
    buckets: [Vec<usize>; 4],
    /// The first allow of Write on a topic that no deny shadows, if any.
    topic_write: Option<usize>,
}

impl Permissions {
    /// Indexes `grants`; their order decides which grant is reported when several could.
    pub fn new(grants: Vec<Grant>) -> Self {
        let mut buckets: [Vec<usize>; 4] = Default::default();
        for (i, grant) in grants.iter().enumerate() {
            if let Some(bucket) = buckets.get_mut(grant.pattern.resource_type().index()) {
                bucket.push(i);
            }
        }
        let topic_write = first_unshadowed_topic_write(&grants, &buckets);
        Permissions {
            grants,
            buckets,
            topic_write,
        }
    }

    /// The grants, in the order given.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// Iterates the grants, in the order given.
    pub fn iter(&self) -> std::slice::Iter<'_, Grant> {
        self.grants.iter()
    }

    /// The number of grants.
    pub fn len(&self) -> usize {
        self.grants.len()
    }

    /// Whether there are no grants (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.grants.is_empty()
    }

    /// Whether the session may perform `op` on `resource`, the grant that decided, and why.
    /// See [`Permissions`] for the rules.
    pub fn authorize(&self, op: Operation, resource: &Resource<'_>) -> Authorization<'_> {
        let mut direct: Option<&Grant> = None;
        let mut implied: Option<(&Grant, Operation)> = None;
        for grant in self.bucket(resource.resource_type) {
            if !grant.pattern.matches(resource) {
                continue;
            }
            match grant.effect {
                Effect::Deny => {
                    if grant.operations.covers(op) {
                        return Authorization {
                            decision: Decision::Deny,
                            grant: Some(grant),
                            reason: AuthzReason::DeniedBy,
                        };
                    }
                }
                Effect::Allow => {
                    if direct.is_some() {
                        continue;
                    }
                    if grant.operations.covers(op) {
                        direct = Some(grant);
                    } else if implied.is_none() {
                        implied = implying(grant.operations, op).map(|by| (grant, by));
                    }
                }
            }
        }
        if let Some(grant) = direct {
            return allow(grant, AuthzReason::AllowedBy);
        }
        if let Some((grant, by)) = implied {
            return allow(grant, AuthzReason::ImpliedBy(by));
        }
        if op == Operation::IdempotentWrite
            && resource.resource_type == ResourceType::Cluster
            && resource.name == CLUSTER_NAME
            && let Some(grant) = self.topic_write.and_then(|i| self.grants.get(i))
        {
            return allow(grant, AuthzReason::ImpliedBy(Operation::Write));
        }
        Authorization {
            decision: Decision::Deny,
            grant: None,
            reason: AuthzReason::NoGrant,
        }
    }

    fn bucket(&self, resource_type: ResourceType) -> impl Iterator<Item = &Grant> + '_ {
        self.buckets
            .get(resource_type.index())
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter_map(|&i| self.grants.get(i))
    }
}

fn allow(grant: &Grant, reason: AuthzReason) -> Authorization<'_> {
    Authorization {
        decision: Decision::Allow,
        grant: Some(grant),
        reason,
    }
}

/// The operation in an allow of `ops` that implies `op`, if any (not `op` itself).
fn implying(ops: OperationSet, op: Operation) -> Option<Operation> {
    const DESCRIBE: [Operation; 4] = [
        Operation::Read,
        Operation::Write,
        Operation::Delete,
        Operation::Alter,
    ];
    match op {
        Operation::Describe => DESCRIBE.into_iter().find(|o| ops.contains(*o)),
        Operation::DescribeConfigs if ops.contains(Operation::AlterConfigs) => {
            Some(Operation::AlterConfigs)
        }
        _ => None,
    }
}

/// Kafka's `authorizeByResourceType(WRITE, TOPIC)`: is Write allowed on at least one topic?
/// Returns the first allow (in grant order) that no deny shadows.
fn first_unshadowed_topic_write(grants: &[Grant], buckets: &[Vec<usize>; 4]) -> Option<usize> {
    let topics = buckets.get(ResourceType::Topic.index())?;
    let writes = |effect: Effect| {
        topics.iter().copied().filter(move |&i| {
            grants
                .get(i)
                .is_some_and(|g| g.effect == effect && g.operations.covers(Operation::Write))
        })
    };
    let pattern = |i: usize| grants.get(i).map(|g| &g.pattern);
    let denies: Vec<&ResourcePattern> = writes(Effect::Deny).filter_map(pattern).collect();
    if denies
        .iter()
        .any(|d| d.pattern_type() == PatternType::Wildcard)
    {
        return None;
    }
    writes(Effect::Allow)
        .find(|&i| pattern(i).is_some_and(|allow| !denies.iter().any(|deny| shadows(deny, allow))))
}

/// Whether a deny of Write on `deny` leaves no topic of `allow` writable, as Kafka judges it.
fn shadows(deny: &ResourcePattern, allow: &ResourcePattern) -> bool {
    match (allow.pattern_type(), deny.pattern_type()) {
        (_, PatternType::Wildcard) => true,
        (PatternType::Wildcard, _) => false,
        (PatternType::Literal, PatternType::Literal) => allow.name() == deny.name(),
        (PatternType::Literal | PatternType::Prefixed, PatternType::Prefixed) => {
            allow.name().starts_with(deny.name())
        }
        (PatternType::Prefixed, PatternType::Literal) => false,
    }
}

impl FromIterator<Grant> for Permissions {
    fn from_iter<I: IntoIterator<Item = Grant>>(iter: I) -> Self {
        Permissions::new(iter.into_iter().collect())
    }
}

impl From<Vec<Grant>> for Permissions {
    fn from(grants: Vec<Grant>) -> Self {
        Permissions::new(grants)
    }
}

impl<'p> IntoIterator for &'p Permissions {
    type Item = &'p Grant;
    type IntoIter = std::slice::Iter<'p, Grant>;
    fn into_iter(self) -> Self::IntoIter {
        self.grants.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::GrantOrigin;

    fn grant(effect: Effect, ops: &[Operation], pattern: &str) -> Grant {
        Grant {
            effect,
            operations: OperationSet::of(ops),
            pattern: pattern.parse().unwrap(),
            origin: GrantOrigin::new("t", 0),
        }
    }

    #[test]
    fn empty_denies_everything() {
        let p = Permissions::default();
        for op in Operation::VALUES {
            let a = p.authorize(op, &Resource::topic("x"));
            assert_eq!(
                (a.decision, a.grant, a.reason),
                (Decision::Deny, None, AuthzReason::NoGrant)
            );
        }
    }

    #[test]
    fn direct_allow_is_preferred_over_implied() {
        let p = Permissions::new(vec![
            grant(Effect::Allow, &[Operation::Read], "Topic:*"),
            grant(Effect::Allow, &[Operation::Describe], "Topic:a"),
        ]);
        let a = p.authorize(Operation::Describe, &Resource::topic("a"));
        assert_eq!(a.reason, AuthzReason::AllowedBy);
        assert!(std::ptr::eq(a.grant.unwrap(), &p.grants()[1]));
        let a = p.authorize(Operation::Describe, &Resource::topic("b"));
        assert_eq!(a.reason, AuthzReason::ImpliedBy(Operation::Read));
    }

    #[test]
    fn shadowing_follows_kafka() {
        let pat = |s: &str| s.parse::<ResourcePattern>().unwrap();
        assert!(shadows(&pat("Topic:ab*"), &pat("Topic:abc")));
        assert!(shadows(&pat("Topic:ab*"), &pat("Topic:abc*")));
        assert!(shadows(&pat("Topic:ab*"), &pat("Topic:ab*")));
        assert!(!shadows(&pat("Topic:abc*"), &pat("Topic:ab*")));
        assert!(!shadows(&pat("Topic:abc"), &pat("Topic:abc*")));
        assert!(shadows(&pat("Topic:abc"), &pat("Topic:abc")));
        assert!(!shadows(&pat("Topic:ab*"), &pat("Topic:*")));
        assert!(shadows(&pat("Topic:*"), &pat("Topic:*")));
    }

    #[test]
    fn authorization_display() {
        let p = Permissions::new(vec![grant(Effect::Deny, &[Operation::Write], "Topic:a")]);
        let a = p.authorize(Operation::Write, &Resource::topic("a"));
        assert_eq!(
            a.to_string(),
            "deny: denied by grant 1 of pool `t` (deny Write on Topic:a)"
        );
        let a = p.authorize(Operation::Read, &Resource::topic("a"));
        assert_eq!(a.to_string(), "deny: no grant allows it");
    }
}
