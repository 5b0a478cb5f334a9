//! Owns the SASL/OAUTHBEARER (RFC 7628) client message: parsing and the error challenge.
