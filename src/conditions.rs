//! The words a user sees: the `Ready` condition and its reasons, and the reasons of our Events. Both are
//! typed, so no string literal names a reason anywhere else. `lastTransitionTime` moves only when the
//! condition's status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

pub const READY: &str = "Ready";

/// Why an ApiIntegration is (or is not) Ready. The string form is the condition's `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Creating,
    Updating,
    Synced,
    InvalidSpec,
    ApiNotFound,
    AccessDenied,
    Throttled,
    AwsError,
    Deleting,
    DeletionBlocked,
    Recreated,
    AdoptionRefused,
    /// The operator has no AWS credentials at all (no IRSA, Pod Identity, keys or profile).
    CredentialsMissing,
    /// connectionRef names no VPC link.
    VpcLinkNotFound,
    /// apiRef or connectionRef names more than one.
    AmbiguousReference,
    /// No ApiGatewayAccess lets this namespace manage this API in this region (`--tenancy policy`).
    NotPermitted,
    /// The operator itself failed (a bug: a reconcile panicked); it is retried with backoff.
    InternalError,
}

impl Reason {
    pub const ALL: &'static [Reason] = &[
        Reason::Creating,
        Reason::Updating,
        Reason::Synced,
        Reason::InvalidSpec,
        Reason::ApiNotFound,
        Reason::AccessDenied,
        Reason::Throttled,
        Reason::AwsError,
        Reason::Deleting,
        Reason::DeletionBlocked,
        Reason::Recreated,
        Reason::AdoptionRefused,
        Reason::CredentialsMissing,
        Reason::VpcLinkNotFound,
        Reason::AmbiguousReference,
        Reason::NotPermitted,
        Reason::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Creating => "Creating",
            Reason::Updating => "Updating",
            Reason::Synced => "Synced",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ApiNotFound => "ApiNotFound",
            Reason::AccessDenied => "AccessDenied",
            Reason::Throttled => "Throttled",
            Reason::AwsError => "AwsError",
            Reason::Deleting => "Deleting",
            Reason::DeletionBlocked => "DeletionBlocked",
            Reason::Recreated => "Recreated",
            Reason::AdoptionRefused => "AdoptionRefused",
            Reason::CredentialsMissing => "CredentialsMissing",
            Reason::VpcLinkNotFound => "VpcLinkNotFound",
            Reason::AmbiguousReference => "AmbiguousReference",
            Reason::NotPermitted => "NotPermitted",
            Reason::InternalError => "InternalError",
        }
    }

    /// Ready is True only for these reasons (the integration exists and matches the spec).
    pub fn is_ready(self) -> bool {
        matches!(self, Reason::Synced | Reason::Recreated)
    }
}

/// The time now, as Kubernetes writes it.
pub fn now() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now())
}

/// Sets (or replaces) the condition of `type_` in `conditions`, keeping `lastTransitionTime` when the
/// status has not changed.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: bool,
    reason: Reason,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) {
    let status = if status { "True" } else { "False" }.to_string();
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let last_transition_time = match previous {
        Some(i) if conditions[i].status == status => conditions[i].last_transition_time.clone(),
        _ => now,
    };
    let condition = Condition {
        type_: type_.to_string(),
        status,
        reason: reason.as_str().to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// The Ready condition, if any.
pub fn ready(conditions: &[Condition]) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == READY)
}

/// Why we published an Event. A failure's Event carries the condition's own reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventReason {
    Created,
    /// The recorded integration was found deleted; a new one is being created.
    Recreating,
    Recreated,
    Updated,
    Adopted,
    /// An interrupted create's integration was found and taken instead of creating another.
    Recovered,
    Deleted,
    Retained,
    /// A failure, with the reason the Ready condition shows.
    Failed(Reason),
}

impl EventReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EventReason::Created => "Created",
            EventReason::Recreating => "Recreating",
            EventReason::Recreated => "Recreated",
            EventReason::Updated => "Updated",
            EventReason::Adopted => "Adopted",
            EventReason::Recovered => "Recovered",
            EventReason::Deleted => "Deleted",
            EventReason::Retained => "Retained",
            EventReason::Failed(r) => r.as_str(),
        }
    }

    /// The Event's action: what the operator was doing.
    pub fn action(self) -> &'static str {
        match self {
            EventReason::Created | EventReason::Recreated | EventReason::Recovered => "Create",
            EventReason::Recreating => "Recreate",
            EventReason::Updated => "Update",
            EventReason::Adopted => "Adopt",
            EventReason::Deleted | EventReason::Retained => "Delete",
            EventReason::Failed(_) => "Reconcile",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let mut cs = vec![];
        set_condition(
            &mut cs,
            READY,
            false,
            Reason::Creating,
            "creating",
            Some(1),
            at(10),
        );
        set_condition(
            &mut cs,
            READY,
            false,
            Reason::ApiNotFound,
            "no api",
            Some(1),
            at(20),
        );
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].last_transition_time, at(10));
        assert_eq!(cs[0].reason, "ApiNotFound");
        set_condition(&mut cs, READY, true, Reason::Synced, "ok", Some(2), at(30));
        assert_eq!(cs[0].last_transition_time, at(30));
        assert_eq!(cs[0].status, "True");
        assert_eq!(cs[0].observed_generation, Some(2));
    }

    #[test]
    fn reasons_round_trip_and_readiness() {
        let names: std::collections::BTreeSet<_> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names.len(),
            Reason::ALL.len(),
            "every reason has its own name"
        );
        let ready: Vec<_> = Reason::ALL.iter().filter(|r| r.is_ready()).collect();
        assert_eq!(ready, vec![&Reason::Synced, &Reason::Recreated]);
    }
}
