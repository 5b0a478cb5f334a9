//! Owns the configurations the tests and benches share (`testdata/config/`): each one written
//! once, as a template, and filled in here with what is only known at run time (the local
//! issuer's address, a JWKS file). It must not hold test logic.

use std::path::Path;

use super::TestIssuer;

/// `testdata/config/login.toml`: one provider (`op-main`), `[cluster] id = "lkc-1"`, and the
/// pools `pool-analytics` (three grants, one templated on `tenant`), `pool-ops` (identity
/// `claims.client_id`) and `pool-svc` (an indexed `claims.sub` filter).
const LOGIN_TOML: &str = include_str!("../../testdata/config/login.toml");

/// Where the shared configuration's provider gets its keys.
#[derive(Clone, Copy, Debug)]
pub enum TestKeys<'a> {
    /// The local test issuer: its issuer URL and discovery (plain http on 127.0.0.1).
    Issuer(&'a TestIssuer),
    /// A fixed issuer URL and a JWKS file: no network (benches).
    File {
        /// The provider's `issuer`.
        issuer: &'a str,
        /// The `jwks_file` (relative paths resolve against the `base_dir` given to
        /// [`Config::parse`](crate::config::Config::parse)).
        jwks: &'a Path,
    },
}

/// The login configuration the tests and benches share (`testdata/config/login.toml`), as TOML
/// text for [`Config::parse`](crate::config::Config::parse), its provider pointed at `keys`.
///
/// ```
/// use poolgate::config::Config;
/// use poolgate::testkit::{TestKeys, login_config};
/// let keys = TestKeys::File { issuer: "https://idp.example.com", jwks: "jwks.json".as_ref() };
/// let config = Config::parse(&login_config(keys), "login.toml", ".".as_ref()).unwrap();
/// assert_eq!(config.pools().pools().len(), 3);
/// ```
pub fn login_config(keys: TestKeys<'_>) -> String {
    fill(LOGIN_TOML, keys)
}

/// `template` with `{issuer}` and `{discovery_url}` filled in, or, for a JWKS file, its
/// `discovery_url` line replaced by `jwks_file` and its `insecure_allow_http` line dropped.
fn fill(template: &str, keys: TestKeys<'_>) -> String {
    match keys {
        TestKeys::Issuer(issuer) => template
            .replace("{issuer}", issuer.issuer())
            .replace("{discovery_url}", issuer.discovery_url().as_str()),
        TestKeys::File { issuer, jwks } => {
            let jwks = toml::Value::String(jwks.display().to_string());
            template
                .replace("{issuer}", issuer)
                .lines()
                .filter(|line| !line.starts_with("insecure_allow_http"))
                .map(
                    |line| match line.starts_with("discovery_url = \"{discovery_url}\"") {
                        true => format!("jwks_file = {jwks}\n"),
                        false => format!("{line}\n"),
                    },
                )
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::keystore::KeySource;

    #[test]
    fn a_jwks_file_replaces_discovery() {
        let keys = TestKeys::File {
            issuer: "https://idp.example.com",
            jwks: Path::new("/tmp/a \"quoted\" dir/jwks.json"),
        };
        let config = Config::parse(&login_config(keys), "login.toml", Path::new(".")).unwrap();
        let provider = &config.providers()[0];
        assert_eq!(
            provider.source,
            KeySource::JwksFile("/tmp/a \"quoted\" dir/jwks.json".into())
        );
        assert!(!provider.store.fetch.insecure_allow_http);
        assert_eq!(provider.policy.issuer(), "https://idp.example.com");
        let pools: Vec<&str> = config.pools().pools().iter().map(|p| p.id()).collect();
        assert_eq!(pools, ["pool-analytics", "pool-ops", "pool-svc"]);
    }
}
