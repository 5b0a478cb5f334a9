//! Kafka ACL operations and [`OperationSet`], a `Copy` bitset of them.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::str::FromStr;

use super::ParseError;
use crate::error::clip;

/// A Kafka ACL operation, named as Kafka's `AclOperation` and Confluent's role definitions name
/// it.
///
/// ```
/// use poolgate::authz::Operation;
/// let op: Operation = "DescribeConfigs".parse().unwrap();
/// assert_eq!(op, Operation::DescribeConfigs);
/// assert_eq!(op.to_string(), "DescribeConfigs");
/// assert!("READ".parse::<Operation>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Operation {
    /// `Read`: fetch from a topic, join or commit offsets for a group.
    Read,
    /// `Write`: produce to a topic, use a transactional id.
    Write,
    /// `Create`: create a topic (on the topic or on the cluster).
    Create,
    /// `Delete`: delete a topic, records or a group.
    Delete,
    /// `Alter`: alter partitions, ACLs on the cluster.
    Alter,
    /// `Describe`: metadata, offsets, group and transaction state.
    Describe,
    /// `ClusterAction`: broker-to-broker requests.
    ClusterAction,
    /// `DescribeConfigs`: read configuration.
    DescribeConfigs,
    /// `AlterConfigs`: change configuration.
    AlterConfigs,
    /// `IdempotentWrite`: initialise an idempotent producer (on the cluster).
    IdempotentWrite,
    /// `All`: every operation, present and future.
    All,
}

impl Operation {
    /// Every operation, in the fixed order used by [`OperationSet::iter`].
    pub const VALUES: [Operation; 11] = [
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::All,
    ];

    /// The operation's name, as accepted by [`FromStr`].
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::All => "All",
        }
    }

    const fn bit(self) -> u16 {
        let index = match self {
            Operation::Read => 0,
            Operation::Write => 1,
            Operation::Create => 2,
            Operation::Delete => 3,
            Operation::Alter => 4,
            Operation::Describe => 5,
            Operation::ClusterAction => 6,
            Operation::DescribeConfigs => 7,
            Operation::AlterConfigs => 8,
            Operation::IdempotentWrite => 9,
            Operation::All => 10,
        };
        1 << index
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::VALUES
            .into_iter()
            .find(|op| op.as_str() == s)
            .ok_or_else(|| ParseError::UnknownOperation { name: clip(s) })
    }
}

/// A set of [`Operation`]s: a `u16` bitset, `Copy`, iterated in the order of
/// [`Operation::VALUES`].
///
/// Membership is exact: a set holding `All` [`contains`](Self::contains) only `All`, and
/// [`covers`](Self::covers) every operation.
///
/// ```
/// use poolgate::authz::{Operation, OperationSet};
/// let ops = OperationSet::of(&[Operation::Describe, Operation::Read]);
/// assert!(ops.contains(Operation::Read));
/// assert!(!ops.contains(Operation::Write));
/// let names: Vec<_> = ops.iter().map(|op| op.as_str()).collect();
/// assert_eq!(names, ["Read", "Describe"]);
/// assert!(OperationSet::of(&[Operation::All]).covers(Operation::Write));
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OperationSet(u16);

impl OperationSet {
    /// The empty set.
    pub const EMPTY: OperationSet = OperationSet(0);

    /// The set of `ops`.
    pub const fn of(ops: &[Operation]) -> OperationSet {
        let mut bits = 0;
        let mut i = 0;
        while i < ops.len() {
            bits |= ops[i].bit();
            i += 1;
        }
        OperationSet(bits)
    }

    /// This set with `op` added.
    #[must_use]
    pub const fn with(self, op: Operation) -> OperationSet {
        OperationSet(self.0 | op.bit())
    }

    /// Adds `op`.
    pub fn insert(&mut self, op: Operation) {
        self.0 |= op.bit();
    }

    /// Whether `op` itself is in the set.
    pub const fn contains(self, op: Operation) -> bool {
        self.0 & op.bit() != 0
    }

    /// Whether the set names `op` or `All`: what an allow or deny of this set applies to
    /// directly (implications such as Read ⇒ Describe are the decision's business).
    pub const fn covers(self, op: Operation) -> bool {
        self.0 & (op.bit() | Operation::All.bit()) != 0
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The number of operations in the set.
    pub const fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The union of both sets.
    #[must_use]
    pub const fn union(self, other: OperationSet) -> OperationSet {
        OperationSet(self.0 | other.0)
    }

    /// The operations in the set, in the order of [`Operation::VALUES`].
    pub fn iter(self) -> OperationSetIter {
        OperationSetIter { bits: self.0 }
    }
}

/// Iterates an [`OperationSet`] in the order of [`Operation::VALUES`].
#[derive(Clone, Debug)]
pub struct OperationSetIter {
    bits: u16,
}

impl Iterator for OperationSetIter {
    type Item = Operation;

    fn next(&mut self) -> Option<Operation> {
        while self.bits != 0 {
            let index = self.bits.trailing_zeros() as usize;
            self.bits &= self.bits - 1;
            if let Some(op) = Operation::VALUES.get(index) {
                return Some(*op);
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.bits.count_ones() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for OperationSetIter {}

impl IntoIterator for OperationSet {
    type Item = Operation;
    type IntoIter = OperationSetIter;
    fn into_iter(self) -> OperationSetIter {
        self.iter()
    }
}

impl FromIterator<Operation> for OperationSet {
    fn from_iter<I: IntoIterator<Item = Operation>>(iter: I) -> Self {
        let mut set = OperationSet::EMPTY;
        set.extend(iter);
        set
    }
}

impl Extend<Operation> for OperationSet {
    fn extend<I: IntoIterator<Item = Operation>>(&mut self, iter: I) {
        for op in iter {
            self.insert(op);
        }
    }
}

impl From<Operation> for OperationSet {
    fn from(op: Operation) -> Self {
        OperationSet::EMPTY.with(op)
    }
}

impl BitOr for OperationSet {
    type Output = OperationSet;
    fn bitor(self, rhs: OperationSet) -> OperationSet {
        self.union(rhs)
    }
}

impl BitOrAssign for OperationSet {
    fn bitor_assign(&mut self, rhs: OperationSet) {
        *self = self.union(rhs);
    }
}

impl fmt::Debug for OperationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// `Read,Describe`; the empty set shows as `(none)`.
impl fmt::Display for OperationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("(none)");
        }
        for (i, op) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(op.as_str())?;
        }
        Ok(())
    }
}

/// Serializes as an array of operation names, in the fixed order.
impl serde::Serialize for OperationSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> serde::Deserialize<'de> for OperationSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ops = Vec::<Operation>::deserialize(d)?;
        Ok(ops.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for op in Operation::VALUES {
            assert!(seen.insert(op.bit()));
            assert_eq!(op.as_str().parse::<Operation>(), Ok(op));
            assert_eq!(op.to_string(), op.as_str());
        }
        assert!("read".parse::<Operation>().is_err());
        assert!("".parse::<Operation>().is_err());
    }

    #[test]
    fn set_iterates_in_fixed_order() {
        let all: OperationSet = Operation::VALUES.into_iter().rev().collect();
        assert_eq!(all.len(), Operation::VALUES.len());
        assert_eq!(all.iter().collect::<Vec<_>>(), Operation::VALUES.to_vec());
        assert_eq!(all.iter().len(), 11);
        assert_eq!(OperationSet::EMPTY.iter().next(), None);
        assert_eq!(OperationSet::EMPTY.to_string(), "(none)");
        let rw = OperationSet::from(Operation::Write) | Operation::Read.into();
        assert_eq!(rw.to_string(), "Read,Write");
        assert_eq!(format!("{rw:?}"), "{Read, Write}");
    }

    #[test]
    fn contains_is_exact_covers_includes_all() {
        let all = OperationSet::of(&[Operation::All]);
        assert!(all.contains(Operation::All));
        assert!(!all.contains(Operation::Read));
        assert!(all.covers(Operation::Read));
        let read = OperationSet::of(&[Operation::Read]);
        assert!(read.covers(Operation::Read));
        assert!(!read.covers(Operation::Describe));
        assert!(!read.covers(Operation::All));
    }

    #[test]
    fn serde_uses_names() {
        let set = OperationSet::of(&[Operation::AlterConfigs, Operation::Read]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["Read","AlterConfigs"]"#);
        assert_eq!(serde_json::from_str::<OperationSet>(&json).unwrap(), set);
        assert!(serde_json::from_str::<OperationSet>(r#"["Reed"]"#).is_err());
    }
}
