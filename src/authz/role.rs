//! Confluent's predefined RBAC roles, as data: which Kafka operations each role grants on each
//! resource type.

use std::fmt;
use std::str::FromStr;

use super::ParseError;
use super::operation::{Operation, OperationSet};
use super::resource::ResourceType;
use crate::error::clip;

use Operation::{All, Create, Delete, Describe, DescribeConfigs, IdempotentWrite, Read, Write};

/// A Confluent predefined role, usable in a grant instead of a list of operations.
///
/// A role grant applies the role's operations for the grant's resource type to the grant's
/// pattern: `DeveloperRead` on `Topic:orders-*` allows `Read` and `Describe` on those topics.
/// Unlike Confluent, binding a role to `Cluster:kafka-cluster` grants only the role's
/// operations on the cluster resource itself, never on every topic or group; to cover all
/// topics, bind the role to `Topic:*`.
///
/// | role | Topic | Group | TransactionalId | Cluster |
/// |---|---|---|---|---|
/// | `DeveloperRead` | Read, Describe | Read, Describe | Describe | — |
/// | `DeveloperWrite` | Write, Describe | — | Write, Describe | IdempotentWrite |
/// | `DeveloperManage` | Create, Delete, Describe, DescribeConfigs | Delete, Describe | Describe | Create, DescribeConfigs |
/// | `ResourceOwner` | Read, Write, Create, Delete, Alter, Describe, DescribeConfigs, AlterConfigs | Read, Delete, Describe | Write, Describe ¹ | — ¹ |
/// | `ClusterAdmin` | All | Read, Delete, Describe ¹ | Write, Describe ¹ | All |
///
/// Sources:
/// - the role scopes and the coarse read/write/manage table:
///   <https://docs.confluent.io/platform/current/security/authorization/rbac/rbac-predefined-roles.html>
///   and <https://docs.confluent.io/cloud/current/security/access-control/rbac/predefined-rbac-roles.html>;
/// - the per-operation lists: the role definitions the Metadata Service returns to
///   `confluent iam rbac role describe`
///   (<https://docs.confluent.io/confluent-cli/current/command-reference/iam/rbac/role/confluent_iam_rbac_role_describe.html>),
///   as recorded in the Confluent CLI's fixtures (`confluentinc/cli`,
///   `test/fixtures/output/iam/rbac/role/list-json-onprem.golden` and `list-json-cloud.golden`);
///   `CloudClusterAdmin` there is `All` on `Topic` and `Cluster`;
/// - the operations each resource type has: <https://docs.confluent.io/cloud/current/security/access-control/acls/operations.html>.
///
/// ¹ Not stated by those sources; chosen conservatively: the operations Kafka defines on a
/// group (Read, Delete, Describe) or transactional id (Write, Describe) rather than `All`,
/// so that operations Kafka adds later are not granted silently; and nothing on the cluster
/// for `ResourceOwner`. Access-management operations (`DescribeAccess`, `AlterAccess`) and
/// non-Kafka resources (Schema Registry, Connect, ksqlDB, Flink) are out of scope.
/// A `—` means the role grants nothing there, and a grant template binding the role to that
/// resource type is rejected when the configuration loads.
///
/// ```
/// use poolgate::authz::{Operation, ResourceType, Role};
/// let role: Role = "DeveloperWrite".parse().unwrap();
/// assert!(role.operations(ResourceType::Cluster).contains(Operation::IdempotentWrite));
/// assert!(role.operations(ResourceType::Group).is_empty());
/// assert_eq!("CloudClusterAdmin".parse::<Role>().unwrap(), Role::ClusterAdmin);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// `DeveloperRead`: consume.
    DeveloperRead,
    /// `DeveloperWrite`: produce, idempotently or transactionally.
    DeveloperWrite,
    /// `DeveloperManage`: create, delete and inspect resources, without their data.
    DeveloperManage,
    /// `ResourceOwner`: everything on the bound resources, data included.
    ResourceOwner,
    /// `ClusterAdmin` (alias `CloudClusterAdmin`): administer the cluster.
    ClusterAdmin,
}

impl Role {
    /// Every role.
    pub const VALUES: [Role; 5] = [
        Role::DeveloperRead,
        Role::DeveloperWrite,
        Role::DeveloperManage,
        Role::ResourceOwner,
        Role::ClusterAdmin,
    ];

    /// The role's name, as accepted by [`FromStr`].
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::DeveloperRead => "DeveloperRead",
            Role::DeveloperWrite => "DeveloperWrite",
            Role::DeveloperManage => "DeveloperManage",
            Role::ResourceOwner => "ResourceOwner",
            Role::ClusterAdmin => "ClusterAdmin",
        }
    }

    /// The operations the role grants on resources of type `resource_type` (see the table on
    /// [`Role`]); empty where it grants none.
    pub const fn operations(self, resource_type: ResourceType) -> OperationSet {
        use ResourceType::{Cluster, Group, Topic, TransactionalId};
        let ops: &[Operation] = match (self, resource_type) {
            (Role::DeveloperRead, Topic) => &[Read, Describe],
            (Role::DeveloperRead, Group) => &[Read, Describe],
            (Role::DeveloperRead, TransactionalId) => &[Describe],
            (Role::DeveloperRead, Cluster) => &[],

            (Role::DeveloperWrite, Topic) => &[Write, Describe],
            (Role::DeveloperWrite, Group) => &[],
            (Role::DeveloperWrite, TransactionalId) => &[Write, Describe],
            (Role::DeveloperWrite, Cluster) => &[IdempotentWrite],

            (Role::DeveloperManage, Topic) => &[Create, Delete, Describe, DescribeConfigs],
            (Role::DeveloperManage, Group) => &[Delete, Describe],
            (Role::DeveloperManage, TransactionalId) => &[Describe],
            (Role::DeveloperManage, Cluster) => &[Create, DescribeConfigs],

            // Every operation Kafka defines on topics and transactional ids.
            (Role::ResourceOwner, Topic | TransactionalId) => return resource_type.operations(),
            (Role::ResourceOwner, Group) => &[Read, Delete, Describe],
            (Role::ResourceOwner, Cluster) => &[],

            (Role::ClusterAdmin, Topic) => &[All],
            (Role::ClusterAdmin, Group) => &[Read, Delete, Describe],
            (Role::ClusterAdmin, TransactionalId) => &[Write, Describe],
            (Role::ClusterAdmin, Cluster) => &[All],
        };
        OperationSet::of(ops)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Accepts the names in [`Role::VALUES`], and `CloudClusterAdmin` (Confluent Cloud's name)
/// for [`Role::ClusterAdmin`].
impl FromStr for Role {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "CloudClusterAdmin" {
            return Ok(Role::ClusterAdmin);
        }
        Role::VALUES
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| ParseError::UnknownRole { name: clip(s) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::VALUES {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("developerread".parse::<Role>().is_err());
        assert!("SystemAdmin".parse::<Role>().is_err());
    }

    #[test]
    fn data_roles_never_grant_all_or_cluster_action() {
        for role in Role::VALUES {
            for ty in ResourceType::VALUES {
                let ops = role.operations(ty);
                assert!(!ops.contains(Operation::ClusterAction), "{role} {ty}");
                if role != Role::ClusterAdmin {
                    assert!(!ops.contains(Operation::All), "{role} {ty}");
                }
            }
        }
        assert!(
            !Role::DeveloperRead
                .operations(ResourceType::Topic)
                .contains(Write)
        );
        assert!(
            !Role::DeveloperWrite
                .operations(ResourceType::Topic)
                .contains(Read)
        );
        assert!(
            !Role::DeveloperManage
                .operations(ResourceType::Topic)
                .contains(Read)
        );
        assert!(
            !Role::DeveloperManage
                .operations(ResourceType::Topic)
                .contains(Write)
        );
    }
}
