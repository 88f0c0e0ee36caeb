use super::*;
use crate::api::{
    ConnectionType, IntegrationMethod, IntegrationType, ManagementPolicy, PayloadFormatVersion,
};
use crate::plan::{IntegrationFields, Protocol};

fn api(id: &str, name: &str, protocol: Protocol) -> ApiSummary {
    ApiSummary {
        id: id.into(),
        name: name.into(),
        protocol,
        tags: BTreeMap::new(),
    }
}

fn http_proxy(id: &str, uri: &str) -> ObservedIntegration {
    ObservedIntegration {
        integration_id: id.into(),
        fields: IntegrationFields {
            integration_type: Some(IntegrationType::HttpProxy),
            integration_uri: Some(uri.into()),
            integration_method: Some(IntegrationMethod::Get),
            connection_type: Some(ConnectionType::Internet),
            payload_format_version: Some(PayloadFormatVersion::V1),
            timeout_in_millis: Some(30000),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn route(key: &str, target: &str) -> RouteSummary {
    RouteSummary {
        route_key: key.into(),
        target: Some(format!("integrations/{target}")),
    }
}

/// Two APIs named alike and a third: names from routes and targets, shared ones told apart by ID.
fn listings() -> (Vec<ApiListing>, Region) {
    let orders = api("a1", "orders", Protocol::Http);
    let orders_again = api("a2", "orders", Protocol::Http);
    let chat = api("w1", "chat", Protocol::WebSocket);
    let mut quick = http_proxy("q1", "https://quick.example.com");
    quick.api_gateway_managed = true;
    let mock = ObservedIntegration {
        integration_id: "m1".into(),
        fields: IntegrationFields {
            integration_type: Some(IntegrationType::Mock),
            timeout_in_millis: Some(29000),
            ..Default::default()
        },
        ..Default::default()
    };
    let listings = vec![
        ApiListing {
            api: chat.clone(),
            integrations: vec![mock],
            routes: vec![route("$connect", "m1")],
            responses: BTreeMap::new(),
        },
        ApiListing {
            api: orders.clone(),
            integrations: vec![
                http_proxy("i2", "https://legacy.example.com/"),
                http_proxy("i1", "https://orders.example.com/"),
                quick,
            ],
            routes: vec![
                route("POST /orders", "i1"),
                route("GET /orders/{id}", "i1"),
                route("$default", "q1"),
            ],
            responses: BTreeMap::new(),
        },
        ApiListing {
            api: orders_again.clone(),
            integrations: vec![http_proxy("i9", "https://legacy.example.com/v2")],
            routes: vec![],
            responses: BTreeMap::new(),
        },
    ];
    let region = Region {
        name: "us-east-1".into(),
        apis: vec![orders, orders_again, chat],
        vpc_links: vec![],
    };
    (listings, region)
}

fn options() -> Options {
    Options {
        namespace: Some("team-a".into()),
        policy: Policy {
            management: ManagementPolicy::Observe,
        },
    }
}

fn names(import: &Import) -> Vec<(String, String)> {
    import
        .objects()
        .map(|o| {
            (
                o.object.metadata.name.clone().unwrap(),
                o.object.metadata.annotations.as_ref().unwrap()[ADOPT_ANNOTATION].clone(),
            )
        })
        .collect()
}

#[test]
fn every_integration_is_named_annotated_and_filed_under_its_api() {
    let (listings, region) = listings();
    let import = import(&listings, &region, &options());
    let files: Vec<&str> = import.files.iter().map(|f| f.file_name.as_str()).collect();
    assert_eq!(files, ["chat.yaml", "orders-a1.yaml", "orders-a2.yaml"]);
    assert_eq!(
        names(&import),
        [
            ("connect".to_string(), "m1".to_string()),
            ("get-orders-id".to_string(), "i1".to_string()),
            ("legacy-example-com-i2".to_string(), "i2".to_string()),
            ("legacy-example-com-i9".to_string(), "i9".to_string()),
        ]
    );
    for o in import.objects() {
        assert_eq!(o.object.metadata.namespace.as_deref(), Some("team-a"));
    }
    let skipped: Vec<String> = import.skipped().map(|s| s.integration_id.clone()).collect();
    assert_eq!(skipped, ["q1"]);
    // The listing order does not matter.
    let mut reordered = listings.clone();
    reordered.reverse();
    for l in &mut reordered {
        l.integrations.reverse();
        l.routes.reverse();
    }
    assert_eq!(
        names(&super::import(&reordered, &region, &options())),
        names(&import)
    );
}

#[test]
fn the_yaml_reads_back_as_the_objects_with_its_comments_in_place() {
    let (listings, region) = listings();
    let import = import(&listings, &region, &options());
    let orders = &import.files[1];
    let text = render::api_file(orders);
    assert!(
        text.contains(
            "# integration i1 of API orders (a1); called by GET /orders/{id}, POST /orders"
        ),
        "{text}"
    );
    let api_id_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("apiId:"))
        .unwrap();
    assert!(
        api_id_line.contains("a1  # by ID: 2 APIs in us-east-1 are named \"orders\""),
        "{api_id_line}"
    );
    assert!(
        text.contains("# skipped: integration q1 of API orders (a1) is not imported: API Gateway made it (quick create)"),
        "{text}"
    );
    let docs: Vec<ApiIntegration> = text
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str(doc).expect(doc))
        .collect();
    let written: Vec<&ApiIntegration> = orders.objects.iter().map(|o| &o.object).collect();
    assert_eq!(docs.iter().collect::<Vec<_>>(), written);
    // The chat API's name is its own: apiRef by name, no note.
    let chat = render::api_file(&import.files[0]);
    assert!(chat.contains("apiRef:\n    name: chat\n"), "{chat}");
    assert!(!chat.contains("apiId"), "{chat}");
    assert!(chat.contains("managementPolicy: Observe"), "{chat}");
    assert!(chat.contains("deletionPolicy: Retain"), "{chat}");
}

#[test]
fn the_out_dir_has_one_file_per_api_with_objects_and_a_kustomization() {
    let (mut listings, region) = listings();
    // An API whose only integration is API Gateway's own gets no file.
    let mut quick = http_proxy("q7", "https://quick.example.com");
    quick.api_gateway_managed = true;
    listings.push(ApiListing {
        api: api("z1", "zeta", Protocol::Http),
        integrations: vec![quick],
        routes: vec![],
        responses: BTreeMap::new(),
    });
    let import = import(&listings, &region, &options());
    let files = render::out_dir_files(&import, Some("team-a"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "chat.yaml",
            "orders-a1.yaml",
            "orders-a2.yaml",
            "kustomization.yaml"
        ]
    );
    let k = &files[3].1;
    let parsed: serde_json::Value = serde_saphyr::from_str(k).unwrap();
    assert_eq!(parsed["namespace"], "team-a");
    assert_eq!(
        parsed["resources"],
        serde_json::json!(["chat.yaml", "orders-a1.yaml", "orders-a2.yaml"])
    );
    assert!(
        k.contains("# API zeta (z1): nothing imported, 1 integration(s) skipped"),
        "{k}"
    );
    assert!(k.contains("# skipped: integration q7"), "{k}");
    // The stream for stdout holds every object too.
    let stream = render::stream(&import);
    assert_eq!(
        stream.matches("kind: ApiIntegration").count(),
        4,
        "{stream}"
    );
}

#[test]
fn manage_is_written_only_when_asked_for() {
    let (listings, region) = listings();
    let mut o = options();
    o.policy.management = ManagementPolicy::Manage;
    for obj in import(&listings, &region, &o).objects() {
        assert_eq!(
            obj.object.spec.management_policy,
            Some(ManagementPolicy::Manage)
        );
    }
}

#[test]
fn a_websocket_integrations_responses_are_written_into_its_object_and_read_back() {
    use crate::api::IntegrationResponseSpec;
    let (mut listings, region) = listings();
    let held = vec![
        ObservedResponse {
            id: "r2".into(),
            fields: IntegrationResponseSpec {
                integration_response_key: "/2\\d\\d/".into(),
                ..Default::default()
            },
        },
        ObservedResponse {
            id: "r1".into(),
            fields: IntegrationResponseSpec {
                integration_response_key: "$default".into(),
                response_templates: Some(BTreeMap::from([(
                    "$default".to_string(),
                    "{\"echo\":$input.body}".to_string(),
                )])),
                ..Default::default()
            },
        },
    ];
    listings[0].responses.insert("m1".into(), held);
    let import = import(&listings, &region, &options());
    let chat = &import.files[0];
    let keys: Vec<&str> = chat.objects[0]
        .object
        .spec
        .integration_responses
        .as_ref()
        .unwrap()
        .iter()
        .map(|r| r.integration_response_key.as_str())
        .collect();
    assert_eq!(keys, ["$default", "/2\\d\\d/"]);
    let text = render::api_file(chat);
    assert!(text.contains("integrationResponses:"), "{text}");
    let doc: ApiIntegration = serde_saphyr::from_str(&text).expect(&text);
    assert_eq!(doc, chat.objects[0].object);
    // The other APIs' objects have no responses (HTTP APIs are never asked for any).
    for o in import.files[1..].iter().flat_map(|f| &f.objects) {
        assert_eq!(o.object.spec.integration_responses, None);
    }
}
