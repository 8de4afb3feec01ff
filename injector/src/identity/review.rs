//! [`TokenReviewValidator`]: checks a token with the Kubernetes API server
//! (`POST /apis/authentication.k8s.io/v1/tokenreviews`, RBAC `create` on `tokenreviews`).
//!
//! The review asks for audience [`TOKEN_AUDIENCE`]; the answer is accepted only when
//! `status.authenticated` is true, `status.audiences` contains `picket` (a token for another
//! audience must not be replayable here) and the user is
//! `system:serviceaccount:<namespace>:<name>`. An API server that cannot be reached, or that
//! refuses the review itself (RBAC, 5xx), is `unavailable`: the sidecar retries.

use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use kube::api::PostParams;
use kube::Api;
use picket_mtls::issuance::TOKEN_AUDIENCE;

use super::token::{ServiceAccount, TokenError, TokenFuture, TokenValidator};

/// How long one TokenReview may take.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);

/// See the module docs.
#[derive(Clone)]
pub struct TokenReviewValidator {
    api: Api<TokenReview>,
}

impl std::fmt::Debug for TokenReviewValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenReviewValidator")
    }
}

impl TokenReviewValidator {
    pub fn new(client: kube::Client) -> TokenReviewValidator {
        TokenReviewValidator {
            api: Api::all(client),
        }
    }

    async fn review(&self, token: &str) -> Result<ServiceAccount, TokenError> {
        let request = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_string(),
                audiences: Some(vec![TOKEN_AUDIENCE.to_string()]),
            },
            ..Default::default()
        };
        let answer = match tokio::time::timeout(
            REVIEW_TIMEOUT,
            self.api.create(&PostParams::default(), &request),
        )
        .await
        {
            Ok(Ok(a)) => a,
            Ok(Err(kube::Error::Api(status))) => {
                return Err(TokenError::Unavailable(format!(
                    "the API server refused the TokenReview: {} {}",
                    status.code, status.message
                )))
            }
            Ok(Err(e)) => return Err(TokenError::Unavailable(format!("TokenReview failed: {e}"))),
            Err(_) => {
                return Err(TokenError::Unavailable(format!(
                    "TokenReview took longer than {REVIEW_TIMEOUT:?}"
                )))
            }
        };
        let status = answer.status.unwrap_or_default();
        if status.authenticated != Some(true) {
            let why = status
                .error
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "not authenticated".into());
            // The API server's message, bounded; it does not contain the token.
            return Err(TokenError::Invalid(why.chars().take(200).collect()));
        }
        let audiences = status.audiences.unwrap_or_default();
        if !audiences.iter().any(|a| a == TOKEN_AUDIENCE) {
            return Err(TokenError::Invalid(format!(
                "the token is not for audience {TOKEN_AUDIENCE:?} (audiences {audiences:?})"
            )));
        }
        let username = status.user.and_then(|u| u.username).unwrap_or_default();
        ServiceAccount::from_username(&username).ok_or_else(|| {
            TokenError::NotServiceAccount(format!(
                "user {:?}",
                username.chars().take(100).collect::<String>()
            ))
        })
    }
}

impl TokenValidator for TokenReviewValidator {
    fn validate<'a>(&'a self, token: &'a str) -> TokenFuture<'a> {
        Box::pin(self.review(token))
    }
}
