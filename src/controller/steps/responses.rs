//! Carrying out the plan's steps for an integration's responses (design rule 12): one
//! GetIntegrationResponses, or one create, update or delete. Each failure names the response's key.

use crate::api::ApiIntegration;
use crate::aws::AwsError;
use crate::conditions::EventReason;
use crate::controller::context::Context;
use crate::controller::error::{Error, Phase};
use crate::controller::scope::{ApiKey, Target};
use crate::controller::status::publish;
use crate::plan::{Outcome, ResponseChange, ResponseStep, WrittenResponse};

/// One response step of integration `integration_id`, and what it left behind. A 404 from the read
/// means the integration is gone (the plan then re-creates it); from a write it is a passing failure
/// (the integration or response changed under us), and the next try reads again.
pub async fn carry_out(
    obj: &ApiIntegration,
    ctx: &Context,
    t: &Target,
    api: &ApiKey,
    integration_id: &str,
    step: &ResponseStep,
) -> Result<Outcome, (Phase, Error)> {
    let aws = t.aws.as_ref();
    let api_id = api.api_id.as_str();
    let change = match step {
        ResponseStep::Read => {
            return match aws.list_integration_responses(api_id, integration_id).await {
                Ok(list) => Ok(Outcome::ResponsesRead(list)),
                Err(AwsError::NotFound(_)) => Ok(Outcome::Gone),
                Err(e) => Err((Phase::Apply, e.into())),
            };
        }
        ResponseStep::Change(change) => change,
    };
    let failed = |phase, source| {
        let key = change.key().to_string();
        (phase, Error::Response { key, source })
    };
    let (written, note) = match change {
        ResponseChange::Create(body) => {
            let made = aws
                .create_integration_response(api_id, integration_id, body)
                .await
                .map_err(|e| failed(Phase::Apply, e))?;
            ctx.settings
                .failpoints
                .after_response_create(&made.id)
                .await;
            let note = format!(
                "Created integration response {} ({}) of integration {integration_id}.",
                body.integration_response_key, made.id
            );
            (WrittenResponse::Made(made), note)
        }
        ResponseChange::Update { id, drift, body } => {
            let updated = aws
                .update_integration_response(api_id, integration_id, id, body)
                .await
                .map_err(|e| failed(Phase::Update, e))?;
            let note = format!(
                "Updated {} of integration response {} of integration {integration_id}.",
                drift.join(", "),
                body.integration_response_key
            );
            (WrittenResponse::Made(updated), note)
        }
        ResponseChange::Delete { id, key } => {
            aws.delete_integration_response(api_id, integration_id, id)
                .await
                .map_err(|e| failed(Phase::Update, e))?;
            let note = format!(
                "Deleted integration response {key} ({id}) of integration {integration_id}."
            );
            (WrittenResponse::Removed { id: id.clone() }, note)
        }
    };
    publish(ctx, obj, EventReason::Updated, note).await;
    Ok(Outcome::ResponseWritten(written))
}
