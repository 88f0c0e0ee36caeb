//! What went wrong with an API Gateway call, by what the reconciler should do about it: SDK errors (and
//! answers that could not be used) turned into [`AwsError`] classes with one short line for the user,
//! the whole chain going to the log.

use aws_sdk_apigatewayv2::error::{ProvideErrorMetadata, SdkError};

/// An AWS failure, by what the reconciler should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// 400: AWS refuses the request as given; retrying the same spec cannot help.
    #[error("API Gateway rejected the request: {0}")]
    BadRequest(String),
    /// 403: the operator's credentials lack a permission.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// 404: the API or integration does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// 409: a route still uses the integration, or a concurrent change to the same API.
    #[error("conflict: {0}")]
    Conflict(String),
    /// 429: throttled by AWS.
    #[error("throttled by API Gateway: {0}")]
    Throttled(String),
    /// 5xx, timeouts, connection failures.
    #[error("API Gateway unavailable: {0}")]
    Unavailable(String),
    /// A success answer the operator cannot use: not JSON, cut short, without the integration's ID, or
    /// with a value this operator does not know. Nothing is decided on it; the call is tried again.
    #[error("unusable answer from API Gateway: {0}")]
    Unreadable(String),
    /// The operator found no AWS credentials to sign with.
    #[error(
        "no AWS credentials ({0}). Looked in the environment (AWS_ACCESS_KEY_ID), IRSA (AWS_WEB_IDENTITY_TOKEN_FILE), \
         EKS Pod Identity, the shared config files and instance metadata; see docs/install.md"
    )]
    CredentialsMissing(String),
    /// Not sent: this replica cannot be sure it still holds the leader Lease (design rule 10).
    #[error("{0}")]
    Fenced(String),
}

impl AwsError {
    /// Short label for metrics and the call log.
    pub fn outcome(&self) -> &'static str {
        match self {
            AwsError::BadRequest(_) => "bad_request",
            AwsError::AccessDenied(_) => "access_denied",
            AwsError::NotFound(_) => "not_found",
            AwsError::Conflict(_) => "conflict",
            AwsError::Throttled(_) => "throttled",
            AwsError::Unavailable(_) => "unavailable",
            AwsError::Unreadable(_) => "unreadable",
            AwsError::CredentialsMissing(_) => "credentials_missing",
            AwsError::Fenced(_) => "fenced",
        }
    }

    /// A 409 because another change to the same API was in flight (worth retrying soon), as opposed
    /// to a 409 because routes still target the integration (which needs the user).
    pub fn is_concurrent_modification(&self) -> bool {
        matches!(self, AwsError::Conflict(m) if m.to_ascii_lowercase().contains("concurrent"))
    }
}

pub(super) fn classify<E>(err: SdkError<E>) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // The fence's interceptor refused to send it: nothing reached AWS.
    if crate::fence::is_fenced(&err) {
        let text = std::iter::successors(Some(&err as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        })
        .find(|e| e.downcast_ref::<crate::fence::Fenced>().is_some())
        .map(|e| e.to_string())
        .unwrap_or_default();
        return AwsError::Fenced(text);
    }
    let (status, code, message) = match &err {
        SdkError::ServiceError(se) => {
            let raw = se.raw();
            let status = raw.status().as_u16();
            let message = match se.err().message() {
                Some(m) if !m.trim().is_empty() => m.to_string(),
                // Not an API Gateway error body (a proxy's HTML page, a cut-off answer): say what came.
                _ => answer_without_message(status, raw.headers().get("content-type"), &err),
            };
            (
                Some(status),
                se.err().code().unwrap_or_default().to_string(),
                message,
            )
        }
        SdkError::ResponseError(re) => {
            let raw = re.raw();
            let status = raw.status().as_u16();
            let content_type = raw.headers().get("content-type");
            (
                Some(status),
                String::new(),
                answer_without_message(status, content_type, &err),
            )
        }
        _ => (None, String::new(), root_cause(&err)),
    };
    // An answer can be megabytes (a proxy's page, an echo of the request): the log and the condition get
    // its start.
    let message = clip(&message, 300);
    if status.is_none() {
        // The request never got an answer: the whole chain is for the log, the root cause for the user.
        tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&err), "API Gateway call got no answer");
        if let Some(refused) = assume_role_failure(&err) {
            return AwsError::AccessDenied(refused);
        }
        if is_missing_credentials(&err) {
            let cause = message
                .trim_end_matches("Attempted:")
                .trim_end_matches(['.', ' ']);
            return AwsError::CredentialsMissing(cause.to_string());
        }
        let kind = match &err {
            SdkError::TimeoutError(_) => "timed out",
            SdkError::DispatchFailure(d) if d.is_timeout() => "timed out",
            SdkError::DispatchFailure(d) if d.is_io() => "could not connect",
            _ => "request failed",
        };
        return AwsError::Unavailable(format!("{kind}: {message}"));
    }
    let text = if code.is_empty() {
        message.clone()
    } else {
        format!("{code}: {message}")
    };
    match (code.as_str(), status) {
        // A success status whose answer could not be read: the request may well have been applied.
        (_, Some(200..=299)) => AwsError::Unreadable(text),
        ("BadRequestException", _) | (_, Some(400)) => AwsError::BadRequest(text),
        ("AccessDeniedException", _) | (_, Some(403)) => AwsError::AccessDenied(text),
        ("NotFoundException", _) | (_, Some(404)) => AwsError::NotFound(text),
        ("ConflictException", _) | (_, Some(409)) => AwsError::Conflict(text),
        ("TooManyRequestsException", _) | (_, Some(429)) => AwsError::Throttled(text),
        _ => AwsError::Unavailable(text),
    }
}

/// The innermost cause's message, on one line.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    clip(&cause.to_string(), 200)
}

/// The first line of `s`, at most `max` characters.
pub(super) fn clip(s: &str, max: usize) -> String {
    let line = s.lines().next().unwrap_or_default().trim();
    if line.chars().count() <= max {
        line.to_string()
    } else {
        format!("{}...", line.chars().take(max - 3).collect::<String>())
    }
}

/// What to say of an answer that carries no API Gateway error message: its status, its content type,
/// and (for a success the SDK could not read) why.
fn answer_without_message(
    status: u16,
    content_type: Option<&str>,
    err: &(dyn std::error::Error + 'static),
) -> String {
    let kind = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim())
        .filter(|c| !c.is_empty())
        .map_or_else(String::new, |c| format!(" ({c})"));
    if (200..300).contains(&status) {
        format!(
            "HTTP {status} answer{kind} that could not be read: {}",
            root_cause(err)
        )
    } else {
        format!("HTTP {status} answer{kind} that is not an API Gateway error")
    }
}

/// The AssumeRole failure in the chain, if that is why the request could not be signed.
fn assume_role_failure(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(f) = e.downcast_ref::<crate::aws::credentials::AssumeRoleFailed>() {
            return Some(f.to_string());
        }
        cause = e.source();
    }
    None
}

/// Did the request fail for want of credentials? The SDK reports that as a failure to resolve the signing
/// identity, with aws-credential-types' error somewhere in the chain: no provider had any, one timed
/// out, or one failed (e.g. IRSA's token exchange was refused).
fn is_missing_credentials(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(ce) =
            e.downcast_ref::<aws_credential_types::provider::error::CredentialsError>()
        {
            // Whatever went wrong (no provider had any, one timed out, one failed): no credentials.
            let _ = ce;
            return true;
        }
        let text = e.to_string();
        if text.contains("no credentials") || text.contains("credential provider was not enabled") {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipped_to_one_short_line() {
        assert_eq!(clip("short\nsecond", 10), "short");
        let huge = "x".repeat(5_000_000);
        let clipped = clip(&huge, 300);
        assert_eq!(clipped.chars().count(), 300);
        assert!(clipped.ends_with("..."));
        assert_eq!(clip("héllo wörld", 8), "héllo...");
    }
}
