//! Whose credentials sign a resource's API Gateway calls (design §7): the operator's own chain (IRSA, Pod
//! Identity, keys), or an IAM role an ApiGatewayAccess names, assumed with STS on top of that chain and
//! cached until shortly before it expires: one AssumeRole per role and session per credential lifetime,
//! not per call.

use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{self, ProvideCredentials, future};
use std::time::{Duration, SystemTime};

/// Assumed credentials are renewed this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(300);

/// Who the operator acts as for a resource.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity {
    /// None: the operator's own credentials.
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    /// The STS session name (`apigw-operator-<namespace>`), so CloudTrail shows which tenant acted.
    pub session_name: String,
}

impl Identity {
    /// The operator's own identity.
    pub fn own() -> Self {
        Identity {
            role_arn: None,
            external_id: None,
            session_name: String::new(),
        }
    }

    /// The AWS account the calls act in, for the quota key: the role's account, or "self".
    pub fn account(&self) -> String {
        self.role_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .unwrap_or("self")
            .to_string()
    }
}

/// AssumeRole was refused or failed: names the role, so the condition can say which.
#[derive(Debug, thiserror::Error)]
#[error("could not assume role {role}: {cause}")]
pub struct AssumeRoleFailed {
    pub role: String,
    pub cause: String,
}

/// An assumed role's credentials, fetched once and reused until [`RENEW_BEFORE`] their expiry.
#[derive(Debug)]
pub struct AssumedRole {
    role: String,
    provider: AssumeRoleProvider,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl AssumedRole {
    pub async fn new(identity: &Identity, base: &aws_config::SdkConfig) -> Self {
        let role = identity.role_arn.clone().unwrap_or_default();
        let mut builder = AssumeRoleProvider::builder(role.clone())
            .session_name(identity.session_name.clone())
            .configure(base);
        if let Some(id) = &identity.external_id {
            builder = builder.external_id(id.clone());
        }
        AssumedRole {
            role,
            provider: builder.build().await,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    async fn credentials(&self) -> provider::Result {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref()
            && c.expiry()
                .is_none_or(|e| e > SystemTime::now() + RENEW_BEFORE)
        {
            return Ok(c.clone());
        }
        tracing::info!(role = %self.role, "assuming role");
        match self.provider.provide_credentials().await {
            Ok(fresh) => {
                *cached = Some(fresh.clone());
                Ok(fresh)
            }
            Err(e) => {
                let cause = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                let cause = cause.lines().next().unwrap_or_default().to_string();
                Err(provider::error::CredentialsError::provider_error(
                    AssumeRoleFailed {
                        role: self.role.clone(),
                        cause,
                    },
                ))
            }
        }
    }
}

impl ProvideCredentials for AssumedRole {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.credentials())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_comes_from_the_role() {
        let mut id = Identity::own();
        assert_eq!(id.account(), "self");
        id.role_arn = Some("arn:aws:iam::222233334444:role/apigw-payments".into());
        assert_eq!(id.account(), "222233334444");
    }
}
