//! Who a bearer token proves the caller is: the [`TokenValidator`] seam, and
//! [`StaticTokens`], a fixed token file for tests and for running without Kubernetes.
//!
//! The Kubernetes implementation (TokenReview) is in [`super::review`].

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use picket_mtls::issuance::ErrorCode;

/// A Kubernetes ServiceAccount, as a token proved it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceAccount {
    pub namespace: String,
    pub name: String,
}

impl ServiceAccount {
    /// Parses `<namespace>/<name>`.
    pub fn parse_slash(text: &str) -> Option<ServiceAccount> {
        let (namespace, name) = text.split_once('/')?;
        if namespace.is_empty() || name.is_empty() || name.contains('/') {
            return None;
        }
        Some(ServiceAccount {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// Parses a Kubernetes username `system:serviceaccount:<namespace>:<name>`.
    pub fn from_username(username: &str) -> Option<ServiceAccount> {
        let rest = username.strip_prefix("system:serviceaccount:")?;
        let (namespace, name) = rest.split_once(':')?;
        if namespace.is_empty() || name.is_empty() || name.contains(':') {
            return None;
        }
        Some(ServiceAccount {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Why a token proves no ServiceAccount. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token is not valid (unknown, expired, wrong audience): `unauthenticated`.
    #[error("token not valid: {0}")]
    Invalid(String),
    /// The token is valid but names something other than a ServiceAccount: `forbidden`.
    #[error("token does not name a ServiceAccount: {0}")]
    NotServiceAccount(String),
    /// The token could not be checked now (the API server is unreachable): `unavailable`.
    #[error("token cannot be checked now: {0}")]
    Unavailable(String),
}

impl TokenError {
    /// The wire error code for this refusal.
    pub fn code(&self) -> ErrorCode {
        match self {
            TokenError::Invalid(_) => ErrorCode::Unauthenticated,
            TokenError::NotServiceAccount(_) => ErrorCode::Forbidden,
            TokenError::Unavailable(_) => ErrorCode::Unavailable,
        }
    }
}

/// The future returned by [`TokenValidator::validate`].
pub type TokenFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ServiceAccount, TokenError>> + Send + 'a>>;

/// Checks a bearer token (audience [`picket_mtls::issuance::TOKEN_AUDIENCE`]) and returns the
/// ServiceAccount it proves.
pub trait TokenValidator: Send + Sync {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a>;
}

/// Errors loading a token file.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// Tokens from a JSON file `{"<token>": "<namespace>/<serviceaccount>", …}`: for tests, the
/// network-namespace end-to-end script, and trying the service without Kubernetes. A token
/// not in the file is `unauthenticated`.
#[derive(Clone, Default)]
pub struct StaticTokens {
    tokens: HashMap<String, ServiceAccount>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokens")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl StaticTokens {
    /// Parses the JSON text of a token file.
    pub fn from_json(text: &str, origin: &str) -> Result<StaticTokens, TokenFileError> {
        let invalid = |reason: String| TokenFileError::Invalid {
            path: origin.to_string(),
            reason,
        };
        let map: HashMap<String, String> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut tokens = HashMap::with_capacity(map.len());
        for (token, who) in map {
            if token.is_empty() {
                return Err(invalid("an empty token".into()));
            }
            let sa = ServiceAccount::parse_slash(&who)
                .ok_or_else(|| invalid(format!("{who:?} is not <namespace>/<serviceaccount>")))?;
            tokens.insert(token, sa);
        }
        Ok(StaticTokens { tokens })
    }

    /// Reads a token file.
    pub fn load(path: &Path) -> Result<StaticTokens, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        StaticTokens::from_json(&text, &path.display().to_string())
    }

    /// Adds a token.
    pub fn insert(&mut self, token: &str, sa: ServiceAccount) {
        self.tokens.insert(token.to_string(), sa);
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl TokenValidator for StaticTokens {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        let found = self
            .tokens
            .get(token)
            .cloned()
            .ok_or_else(|| TokenError::Invalid("unknown token".into()));
        Box::pin(async move { found })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_and_slashes() {
        let sa = ServiceAccount::from_username("system:serviceaccount:shop:cart").unwrap();
        assert_eq!(sa.to_string(), "shop/cart");
        assert!(ServiceAccount::from_username("system:serviceaccount:shop").is_none());
        assert!(ServiceAccount::from_username("system:serviceaccount::cart").is_none());
        assert!(ServiceAccount::from_username("system:serviceaccount:a:b:c").is_none());
        assert!(ServiceAccount::from_username("alice").is_none());
        assert!(ServiceAccount::from_username("system:node:n1").is_none());
        assert_eq!(ServiceAccount::parse_slash("a/b").unwrap().name, "b");
        assert!(ServiceAccount::parse_slash("a/b/c").is_none());
        assert!(ServiceAccount::parse_slash("ab").is_none());
    }

    #[tokio::test]
    async fn static_tokens() {
        let t = StaticTokens::from_json(r#"{"t1":"shop/cart","t2":"db/pg"}"#, "x").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.validate("t2").await.unwrap().namespace, "db");
        let e = t.validate("nope").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unauthenticated);
        assert!(StaticTokens::from_json(r#"{"t1":"shop"}"#, "x").is_err());
        assert!(StaticTokens::from_json(r#"{"":"a/b"}"#, "x").is_err());
        assert!(StaticTokens::from_json(r#"["a"]"#, "x").is_err());
        assert!(!format!("{t:?}").contains("t1"));
    }
}
