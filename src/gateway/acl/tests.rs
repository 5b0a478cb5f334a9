//! Tests of the per-API checks: requests in, verdicts and patched responses out.
