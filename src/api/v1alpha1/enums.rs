//! The spec's enumerations, each value spelled as API Gateway spells it on the wire (and in the CRD).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant),+
        }
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The value as API Gateway spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {other:?}", stringify!($name))),
                }
            }
        }
    };
}

wire_enum!(
    /// The protocol of an API.
    ApiProtocolType {
        Http = "HTTP",
        WebSocket = "WEBSOCKET",
    }
);

wire_enum!(
    /// The kind of backend.
    IntegrationType {
        Aws = "AWS",
        AwsProxy = "AWS_PROXY",
        Http = "HTTP",
        HttpProxy = "HTTP_PROXY",
        Mock = "MOCK",
    }
);

wire_enum!(
    /// HTTP method used to call the backend.
    IntegrationMethod {
        Any = "ANY",
        Get = "GET",
        Post = "POST",
        Put = "PUT",
        Patch = "PATCH",
        Delete = "DELETE",
        Head = "HEAD",
        Options = "OPTIONS",
    }
);

wire_enum!(
    /// AWS service actions an HTTP API can call directly.
    IntegrationSubtype {
        EventBridgePutEvents = "EventBridge-PutEvents",
        SqsSendMessage = "SQS-SendMessage",
        SqsReceiveMessage = "SQS-ReceiveMessage",
        SqsDeleteMessage = "SQS-DeleteMessage",
        SqsPurgeQueue = "SQS-PurgeQueue",
        AppConfigGetConfiguration = "AppConfig-GetConfiguration",
        KinesisPutRecord = "Kinesis-PutRecord",
        StepFunctionsStartExecution = "StepFunctions-StartExecution",
        StepFunctionsStartSyncExecution = "StepFunctions-StartSyncExecution",
        StepFunctionsStopExecution = "StepFunctions-StopExecution",
    }
);

impl IntegrationSubtype {
    /// The requestParameters keys API Gateway requires for this action.
    pub fn required_parameters(self) -> &'static [&'static str] {
        use IntegrationSubtype::*;
        match self {
            EventBridgePutEvents => &["Detail", "DetailType", "Source"],
            SqsSendMessage => &["QueueUrl", "MessageBody"],
            SqsReceiveMessage => &["QueueUrl"],
            SqsDeleteMessage => &["QueueUrl", "ReceiptHandle"],
            SqsPurgeQueue => &["QueueUrl"],
            AppConfigGetConfiguration => {
                &["Application", "Environment", "Configuration", "ClientId"]
            }
            KinesisPutRecord => &["StreamName", "Data", "PartitionKey"],
            StepFunctionsStartExecution | StepFunctionsStartSyncExecution => &["StateMachineArn"],
            StepFunctionsStopExecution => &["ExecutionArn"],
        }
    }
}

wire_enum!(
    /// How API Gateway reaches the backend.
    ConnectionType {
        Internet = "INTERNET",
        VpcLink = "VPC_LINK",
    }
);

wire_enum!(
    /// Payload (event) format version.
    PayloadFormatVersion {
        V1 = "1.0",
        V2 = "2.0",
    }
);

wire_enum!(
    /// Payload encoding conversion (WebSocket APIs).
    ContentHandlingStrategy {
        ConvertToBinary = "CONVERT_TO_BINARY",
        ConvertToText = "CONVERT_TO_TEXT",
    }
);

wire_enum!(
    /// Handling of requests without a matching mapping template (WebSocket APIs).
    PassthroughBehavior {
        WhenNoMatch = "WHEN_NO_MATCH",
        Never = "NEVER",
        WhenNoTemplates = "WHEN_NO_TEMPLATES",
    }
);

wire_enum!(
    /// What deleting the resource does in AWS.
    DeletionPolicy {
        Delete = "Delete",
        Retain = "Retain",
    }
);

wire_enum!(
    /// Whether the operator writes to AWS for the resource, or only reads.
    ManagementPolicy {
        Manage = "Manage",
        Observe = "Observe",
    }
);
