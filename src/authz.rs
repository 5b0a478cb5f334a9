//! Owns permissions: Kafka resources, operations, grants, roles and the authorization decision.
