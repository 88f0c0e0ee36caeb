//! A counting HTTP proxy in front of moto: every contender talks to API Gateway (and STS) through one of
//! these, so AWS calls are counted the same way for all of them, with the time each answer came back.
//! It changes nothing on the way.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// One request the proxy passed on: when moto answered, the operation, moto's status, and the
/// integration ID for calls on one integration.
#[derive(Clone, Debug)]
pub struct Call {
    pub at: Instant,
    pub op: String,
    pub status: u16,
    pub integration: Option<String>,
    /// The API the request names (/v2/apis/{apiId}/...), if any.
    pub api: Option<String>,
}

impl Call {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

pub struct Proxy {
    pub endpoint: String,
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (http://host:port).
    pub async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the counting proxy binds a loopback port");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let shared = calls.clone();
        let task = tokio::spawn(async move {
            use hyper_util::rt::TokioIo;
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<Full<Bytes>>();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, calls) = (client.clone(), upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        forward(req, client.clone(), upstream.clone(), calls.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Proxy {
            endpoint,
            calls,
            task,
        }
    }

    /// How many calls have been answered so far (an index for [`Proxy::since`]).
    pub fn len(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    /// Calls answered from index `from` on, up to `to` (exclusive; None: all so far).
    pub fn slice(&self, from: usize, to: Option<usize>) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        let to = to.unwrap_or(calls.len()).min(calls.len());
        calls[from.min(to)..to].to_vec()
    }

    /// The time of the latest answer, if any.
    pub fn last_at(&self) -> Option<Instant> {
        self.calls.lock().unwrap().last().map(|c| c.at)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

async fn forward(
    req: hyper::Request<hyper::body::Incoming>,
    client: Client,
    upstream: String,
    calls: Arc<Mutex<Vec<Call>>>,
) -> Result<hyper::Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (op, integration) = classify(
        parts.method.as_str(),
        parts.uri.path(),
        &body,
        target.as_deref(),
    );
    let uri = format!(
        "{upstream}{}",
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut fwd = hyper::Request::builder().method(parts.method).uri(uri);
    for (k, v) in parts.headers.iter() {
        if k != hyper::header::HOST {
            fwd = fwd.header(k, v);
        }
    }
    let (status, response) = match client.request(fwd.body(Full::new(body)).unwrap()).await {
        Ok(resp) => {
            let (parts, body) = resp.into_parts();
            let body = body.collect().await?.to_bytes();
            (
                parts.status.as_u16(),
                hyper::Response::from_parts(parts, Full::new(body)),
            )
        }
        Err(e) => (
            502,
            hyper::Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(e.to_string())))
                .unwrap(),
        ),
    };
    let api = match parts
        .uri
        .path()
        .trim_matches('/')
        .split('/')
        .collect::<Vec<_>>()[..]
    {
        ["v2", "apis", api, ..] => Some(api.to_string()),
        _ => None,
    };
    calls.lock().unwrap().push(Call {
        at: Instant::now(),
        op,
        status,
        integration,
        api,
    });
    Ok(response)
}

/// The API Gateway V2 operation (or STS action) a request is, and the integration ID it names.
pub fn classify(
    method: &str,
    path: &str,
    body: &[u8],
    target: Option<&str>,
) -> (String, Option<String>) {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let op = match (method, parts.as_slice()) {
        ("GET", ["v2", "apis"]) => "GetApis",
        ("GET", ["v2", "apis", _]) => "GetApi",
        ("POST", ["v2", "apis", _, "integrations"]) => "CreateIntegration",
        ("GET", ["v2", "apis", _, "integrations"]) => "GetIntegrations",
        ("GET", ["v2", "apis", _, "integrations", _]) => "GetIntegration",
        ("PATCH", ["v2", "apis", _, "integrations", _]) => "UpdateIntegration",
        ("DELETE", ["v2", "apis", _, "integrations", _]) => "DeleteIntegration",
        ("GET", ["v2", "vpclinks"]) => "GetVpcLinks",
        _ => {
            // STS speaks the query protocol (Action=... in a form body) or JSON with X-Amz-Target.
            let form = String::from_utf8_lossy(body);
            let action = form
                .split('&')
                .find_map(|kv| kv.strip_prefix("Action="))
                .map(str::to_string)
                .or_else(|| {
                    target
                        .and_then(|t| t.rsplit('.').next())
                        .map(str::to_string)
                });
            return (
                action.map_or_else(
                    || format!("{method} {}", parts.first().copied().unwrap_or("")),
                    |a| format!("sts:{a}"),
                ),
                None,
            );
        }
    };
    let integration = match parts.as_slice() {
        ["v2", "apis", _, "integrations", id] => Some(id.to_string()),
        _ => None,
    };
    (op.to_string(), integration)
}
