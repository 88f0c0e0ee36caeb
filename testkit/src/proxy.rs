//! The HTTP proxy between an AWS client (the operator, a bench contender) and moto: it counts every
//! call, and on demand keeps API Gateway's quota per account, injects AWS errors, garbage answers,
//! delays, pagination or a random storm.

use crate::moto::moto_endpoint;
use crate::quota::{Quota, QuotaCount, QuotaKeeper, signing_key};
use crate::runtime::rt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rules for the fault proxy: requests whose "METHOD /path\nbody" contains `marker` get `status` with an AWS error
/// of type `error_type` instead of reaching moto.
#[derive(Clone)]
pub struct Fault {
    pub marker: String,
    pub status: u16,
    pub error_type: String,
    pub message: String,
}

/// A slow answer: a request whose "METHOD /path\nbody" contains `marker` reaches moto at once, and moto's
/// answer is held back for `by`.
#[derive(Clone)]
pub struct Delay {
    pub marker: String,
    pub by: Duration,
}

/// Garbage from AWS: a request whose "METHOD /path\nbody" contains `marker` gets an answer of the
/// proxy's making. With `forward` the request reaches moto first (its effect happens) and moto's answer
/// is spoiled on the way back; without, moto never sees it. `status` and `content_type` replace moto's
/// (None keeps them); `body` makes the new body from moto's (empty when not forwarded).
#[derive(Clone)]
pub struct Reply {
    pub marker: String,
    pub forward: bool,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub body: Spoiler,
}

/// Makes a reply's body from moto's answer.
pub type Spoiler = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;

impl Reply {
    /// Answers matching requests with exactly `status`, `content_type` and `body`; moto never sees them.
    pub fn raw(
        marker: impl Into<String>,
        status: u16,
        content_type: &str,
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let body = body.into();
        Reply {
            marker: marker.into(),
            forward: false,
            status: Some(status),
            content_type: Some(content_type.into()),
            body: Arc::new(move |_| body.clone()),
        }
    }

    /// Lets matching requests reach moto, then hands back moto's status with the body `spoil` makes of
    /// moto's: AWS did the work, the answer is garbage.
    pub fn spoiled(
        marker: impl Into<String>,
        spoil: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> Reply {
        Reply {
            marker: marker.into(),
            forward: true,
            status: None,
            content_type: None,
            body: Arc::new(spoil),
        }
    }

    /// As [`Reply::raw`], but after the request reached moto.
    pub fn after_moto(mut self) -> Reply {
        self.forward = true;
        self
    }
}

/// Plays a rule of API Gateway's that moto does not enforce: given "METHOD /path" and the request body,
/// the error API Gateway would answer with (None: the request goes on to moto).
pub type Judge = Arc<dyn Fn(&str, &[u8]) -> Option<Fault> + Send + Sync>;

/// What the proxy does to matching requests, and how many it has held back or failed.
#[derive(Default)]
struct Rules {
    /// API Gateway's quota, per signing key: checked before every other rule, as AWS throttles at the door.
    quota: Mutex<Option<QuotaKeeper>>,
    judges: Mutex<Vec<Judge>>,
    faults: Mutex<Vec<Fault>>,
    replies: Mutex<Vec<Reply>>,
    delays: Mutex<Vec<Delay>>,
    injected: AtomicUsize,
    delayed: AtomicUsize,
    seen: Mutex<Vec<SeenRequest>>,
    /// (marker, page size): moto's answers to matching GETs are cut into pages with a nextToken.
    paginate: Mutex<Option<(String, usize)>>,
    /// Pages served, and how many of those were asked for with a nextToken.
    pages: AtomicUsize,
    follow_ups: AtomicUsize,
    /// A seeded random storm over every request no rule above matched.
    storm: Mutex<Option<StormState>>,
    /// Requests of the storm, by what it did to them.
    storm_counts: Mutex<std::collections::BTreeMap<StormFault, usize>>,
    /// Requests between arrival and the end of their answer; and of those, writes (POST, PATCH, PUT, DELETE).
    in_flight: AtomicUsize,
    in_flight_writes: AtomicUsize,
    /// Every call answered, in order.
    calls: Mutex<Vec<ProxyCall>>,
}

/// What the storm does to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StormFault {
    /// 429 TooManyRequestsException; moto never sees the request.
    Throttled,
    /// 500 InternalServerError; moto never sees the request.
    Internal,
    /// 503 ServiceUnavailable; moto never sees the request.
    Unavailable,
    /// The connection is closed without an answer; moto never sees the request.
    Reset,
    /// moto does the work and its answer is held back for the storm's `slow_by`.
    Slow,
    /// moto does the work and the connection is closed instead of answering: the result is lost.
    Lost,
    /// Passed through untouched (counted so the share of faults can be shown).
    None,
}

impl StormFault {
    /// The faults a storm picks from, each as likely as the others.
    pub const FAULTS: [StormFault; 6] = [
        StormFault::Throttled,
        StormFault::Internal,
        StormFault::Unavailable,
        StormFault::Reset,
        StormFault::Slow,
        StormFault::Lost,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StormFault::Throttled => "429 throttled",
            StormFault::Internal => "500 internal error",
            StormFault::Unavailable => "503 unavailable",
            StormFault::Reset => "connection reset (not applied)",
            StormFault::Slow => "slow answer past the timeout (applied)",
            StormFault::Lost => "answer lost (applied in moto)",
            StormFault::None => "passed through",
        }
    }
}

/// A storm: a `share` (0..=1) of requests get one of [`StormFault::FAULTS`], chosen by a random generator
/// seeded with `seed`; `slow_by` is how long a slow answer is held back.
#[derive(Clone, Debug)]
pub struct Storm {
    pub seed: u64,
    pub share: f64,
    pub slow_by: Duration,
}

struct StormState {
    rng: rand::rngs::StdRng,
    share: f64,
    slow_by: Duration,
}

impl StormState {
    fn pick(&mut self) -> StormFault {
        use rand::Rng;
        if self.rng.random_bool(self.share) {
            StormFault::FAULTS[self.rng.random_range(0..StormFault::FAULTS.len())]
        } else {
            StormFault::None
        }
    }
}

/// Lowers an in-flight counter when the request's future ends or is dropped (client gone).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(counter: &'a AtomicUsize) -> InFlight<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        InFlight(counter)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request that reached the proxy: "METHOD /path\nbody", and the access key ID it was signed with.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub text: String,
    pub access_key: Option<String>,
}

impl Fault {
    /// Requests containing `marker` are answered with `status`, AWS error type `error_type` and `message`.
    pub fn new(marker: impl Into<String>, status: u16, error_type: &str, message: &str) -> Fault {
        Fault {
            marker: marker.into(),
            status,
            error_type: error_type.into(),
            message: message.into(),
        }
    }
}

/// One call the proxy answered (or dropped): when, the operation, the status handed back (0 for a
/// connection closed unanswered), and the integration and API the request names.
#[derive(Clone, Debug)]
pub struct ProxyCall {
    /// When the answer was handed back (or the connection closed).
    pub at: Instant,
    /// When the request arrived (what the quota judged it by).
    pub arrived: Instant,
    pub op: String,
    pub status: u16,
    /// The access key the request was signed with (the account the quota counts it against).
    pub account: Option<String>,
    /// The quota answered it 429 (moto never saw it); a storm's 429 is not this.
    pub over_quota: bool,
    pub integration: Option<String>,
    /// The API the request names (/v2/apis/{apiId}/...), if any.
    pub api: Option<String>,
}

impl ProxyCall {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// An HTTP proxy in front of moto. It counts every call ([`FaultProxy::calls_since`]), so that every
/// client is counted the same way, and on demand injects AWS errors, garbage answers, delays,
/// pagination or a random storm; with no rule it changes nothing on the way. It stops accepting
/// connections when dropped.
pub struct FaultProxy {
    pub endpoint: String,
    rules: Arc<Rules>,
    accept: tokio::task::AbortHandle,
}

impl FaultProxy {
    /// A proxy in front of the stack's moto.
    pub fn start() -> FaultProxy {
        FaultProxy::start_to(&moto_endpoint())
    }

    /// A proxy in front of the moto at `upstream` (e.g. a private one a test restarts), served by the
    /// tests' shared runtime.
    pub fn start_to(upstream: &str) -> FaultProxy {
        FaultProxy::start_on(rt().handle(), upstream)
    }

    /// A proxy in front of `upstream` served by the runtime the caller runs in (the bench's own).
    pub fn start_here(upstream: &str) -> FaultProxy {
        FaultProxy::start_on(&tokio::runtime::Handle::current(), upstream)
    }

    fn start_on(runtime: &tokio::runtime::Handle, upstream: &str) -> FaultProxy {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("the proxy binds a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().unwrap();
        let rules: Arc<Rules> = Arc::default();
        let upstream = upstream.to_string();
        let shared = rules.clone();
        let accept = runtime.spawn(async move {
            use hyper_util::rt::TokioIo;
            let listener = tokio::net::TcpListener::from_std(listener)
                .expect("the listener joins the runtime");
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<http_body_util::Full<bytes::Bytes>>();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (client, upstream, rules) = (client.clone(), upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        counted(req, client.clone(), upstream.clone(), rules.clone())
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FaultProxy {
            endpoint: format!("http://{addr}"),
            rules,
            accept: accept.abort_handle(),
        }
    }

    /// How many calls have been answered so far (a mark for [`FaultProxy::calls_since`]).
    pub fn answered(&self) -> usize {
        self.rules.calls.lock().unwrap().len()
    }

    /// Calls answered from mark `from` on, up to mark `to` (exclusive; None: all so far).
    pub fn calls_since(&self, from: usize, to: Option<usize>) -> Vec<ProxyCall> {
        let calls = self.rules.calls.lock().unwrap();
        let to = to.unwrap_or(calls.len()).min(calls.len());
        calls[from.min(to)..to].to_vec()
    }

    /// When the latest call was answered, if any.
    pub fn last_answer_at(&self) -> Option<Instant> {
        self.rules.calls.lock().unwrap().last().map(|c| c.at)
    }

    pub fn add(&self, fault: Fault) {
        self.rules.faults.lock().unwrap().push(fault);
    }

    /// Every request is shown to `judge` first; what it refuses gets its error (counted in
    /// [`FaultProxy::injected`]) and never reaches moto.
    pub fn judge(&self, judge: impl Fn(&str, &[u8]) -> Option<Fault> + Send + Sync + 'static) {
        self.rules.judges.lock().unwrap().push(Arc::new(judge));
    }

    pub fn delay(&self, delay: Delay) {
        self.rules.delays.lock().unwrap().push(delay);
    }

    /// Answers matching requests with garbage (see [`Reply`]); counted in [`FaultProxy::injected`].
    pub fn reply(&self, reply: Reply) {
        self.rules.replies.lock().unwrap().push(reply);
    }

    /// Drops the fault rules only (replies and delays stay).
    pub fn clear_faults(&self) {
        self.rules.faults.lock().unwrap().clear();
    }

    /// Keeps API Gateway's `quota` per account (signing key) from now on: an API Gateway request past
    /// its account's bucket is answered as AWS answers it ([`too_many_requests`]) and never reaches moto,
    /// before any other rule looks at it. STS requests are not counted (another service, another quota).
    pub fn keep_quota(&self, quota: Quota) {
        *self.rules.quota.lock().unwrap() = Some(QuotaKeeper::new(quota));
    }

    /// The quota kept, if any.
    pub fn quota(&self) -> Option<Quota> {
        self.rules.quota.lock().unwrap().as_ref().map(|k| k.quota())
    }

    /// What the quota did so far, per account (empty without a quota).
    pub fn quota_counts(&self) -> std::collections::BTreeMap<String, QuotaCount> {
        self.rules
            .quota
            .lock()
            .unwrap()
            .as_ref()
            .map(|k| k.counts())
            .unwrap_or_default()
    }

    /// Drops every judge, fault, delay and reply rule.
    pub fn clear(&self) {
        self.rules.judges.lock().unwrap().clear();
        self.rules.faults.lock().unwrap().clear();
        self.rules.delays.lock().unwrap().clear();
        self.rules.replies.lock().unwrap().clear();
    }

    /// Requests answered with an injected error so far.
    pub fn injected(&self) -> usize {
        self.rules.injected.load(Ordering::SeqCst)
    }

    /// Cuts moto's answers to GET requests matching `marker` into pages of `page_size` items, linked by
    /// nextToken, as AWS does for long listings (moto returns everything at once).
    pub fn paginate(&self, marker: &str, page_size: usize) {
        *self.rules.paginate.lock().unwrap() = Some((marker.to_string(), page_size.max(1)));
    }

    /// (pages served, pages asked for with a nextToken).
    pub fn pages(&self) -> (usize, usize) {
        (
            self.rules.pages.load(Ordering::SeqCst),
            self.rules.follow_ups.load(Ordering::SeqCst),
        )
    }

    /// Every request so far, in order of arrival.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.rules.seen.lock().unwrap().clone()
    }

    /// Answers moto has given that are being (or were) held back by a delay rule.
    pub fn delayed(&self) -> usize {
        self.rules.delayed.load(Ordering::SeqCst)
    }

    /// Starts (or reseeds) a random storm over every request that no fault, reply or delay rule matches.
    pub fn storm(&self, storm: Storm) {
        use rand::SeedableRng;
        *self.rules.storm.lock().unwrap() = Some(StormState {
            rng: rand::rngs::StdRng::seed_from_u64(storm.seed),
            share: storm.share.clamp(0.0, 1.0),
            slow_by: storm.slow_by,
        });
    }

    /// Ends the storm; requests pass untouched again (the counts are kept).
    pub fn calm(&self) {
        *self.rules.storm.lock().unwrap() = None;
    }

    /// What the storm did so far, per kind (passed-through requests under [`StormFault::None`]).
    pub fn storm_counts(&self) -> std::collections::BTreeMap<StormFault, usize> {
        self.rules.storm_counts.lock().unwrap().clone()
    }

    /// (requests in flight now, of which writes): a request is in flight from its arrival until its
    /// answer (or its dropped connection) is handed back.
    pub fn in_flight(&self) -> (usize, usize) {
        (
            self.rules.in_flight.load(Ordering::SeqCst),
            self.rules.in_flight_writes.load(Ordering::SeqCst),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What the proxy hands hyper: an answer, or an error that makes hyper close the connection unanswered.
type ProxyResult = Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, ProxyError>;
type ProxyError = Box<dyn std::error::Error + Send + Sync>;

type ProxyClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

/// Handles one request and counts it once its answer (or dropped connection) is ready.
async fn counted(
    req: hyper::Request<hyper::body::Incoming>,
    client: ProxyClient,
    upstream: String,
    rules: Arc<Rules>,
) -> ProxyResult {
    use http_body_util::BodyExt;
    let arrived = Instant::now();
    let _in_flight = InFlight::enter(&rules.in_flight);
    let _write_in_flight =
        (req.method() != hyper::Method::GET).then(|| InFlight::enter(&rules.in_flight_writes));
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let (op, integration) = classify(parts.method.as_str(), parts.uri.path(), &body, target);
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
    let account = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signing_key)
        .map(str::to_string);
    // API Gateway's requests all go to /v2/...; STS has a quota of its own.
    let over_quota = parts.uri.path().starts_with("/v2/")
        && rules
            .quota
            .lock()
            .unwrap()
            .as_mut()
            .is_some_and(|q| !q.admit(account.as_deref(), arrived));
    let answer = if over_quota {
        rules.seen.lock().unwrap().push(SeenRequest {
            text: format!(
                "{} {}\n{}",
                parts.method,
                parts.uri.path(),
                String::from_utf8_lossy(&body)
            ),
            access_key: account.clone(),
        });
        Ok(too_many_requests())
    } else {
        proxy_one(parts, body, client, upstream, &rules).await
    };
    rules.calls.lock().unwrap().push(ProxyCall {
        at: Instant::now(),
        arrived,
        op,
        status: answer.as_ref().map_or(0, |r| r.status().as_u16()),
        account,
        over_quota,
        integration,
        api,
    });
    answer
}

/// API Gateway's answer to a call past the account's quota, as aws-sdk-apigatewayv2 reads it: status 429,
/// the error type in `x-amzn-ErrorType` (the REST-JSON protocol takes the code from there first), and a
/// JSON body with the `message` member of TooManyRequestsException. The V2 model of that error binds no
/// header (V1's binds Retry-After to retryAfterSeconds), so none is sent; the SDK's own `x-amz-retry-after`
/// is not one API Gateway sends.
pub fn too_many_requests() -> hyper::Response<http_body_util::Full<bytes::Bytes>> {
    let request_id = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        rand::random::<u32>(),
        rand::random::<u16>(),
        rand::random::<u16>() & 0xfff,
        rand::random::<u16>() & 0xfff,
        rand::random::<u64>() & 0xffff_ffff_ffff
    );
    hyper::Response::builder()
        .status(429)
        .header("content-type", "application/json")
        .header("x-amzn-ErrorType", "TooManyRequestsException")
        .header("x-amzn-RequestId", request_id)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"message":"Too Many Requests"}"#,
        )))
        .unwrap()
}

async fn proxy_one(
    parts: hyper::http::request::Parts,
    body: bytes::Bytes,
    client: ProxyClient,
    upstream: String,
    rules: &Rules,
) -> ProxyResult {
    use http_body_util::{BodyExt, Full};
    // Faults match on "METHOD /path" followed by the body.
    let text = format!(
        "{} {}\n{}",
        parts.method,
        parts.uri.path(),
        String::from_utf8_lossy(&body)
    );
    // SigV4: "AWS4-HMAC-SHA256 Credential=<access key>/<date>/<region>/<service>/aws4_request, ..."
    let access_key = parts
        .headers
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(signing_key)
        .map(str::to_string);
    rules.seen.lock().unwrap().push(SeenRequest {
        text: text.clone(),
        access_key,
    });
    let head = format!("{} {}", parts.method, parts.uri.path());
    let judged = rules
        .judges
        .lock()
        .unwrap()
        .iter()
        .find_map(|judge| judge(&head, &body));
    let fault = judged.or_else(|| {
        rules
            .faults
            .lock()
            .unwrap()
            .iter()
            .find(|f| text.contains(&f.marker))
            .cloned()
    });
    if let Some(f) = fault {
        rules.injected.fetch_add(1, Ordering::SeqCst);
        let payload = serde_json::json!({"message": f.message});
        return Ok(hyper::Response::builder()
            .status(f.status)
            .header("content-type", "application/json")
            .header("x-amzn-errortype", f.error_type.as_str())
            .body(Full::new(bytes::Bytes::from(payload.to_string())))
            .unwrap());
    }
    let reply = rules
        .replies
        .lock()
        .unwrap()
        .iter()
        .find(|r| text.contains(&r.marker))
        .cloned();
    if let Some(r) = reply.as_ref().filter(|r| !r.forward) {
        rules.injected.fetch_add(1, Ordering::SeqCst);
        return Ok(hyper::Response::builder()
            .status(r.status.unwrap_or(200))
            .header(
                "content-type",
                r.content_type.as_deref().unwrap_or("text/plain"),
            )
            .body(Full::new(bytes::Bytes::from((r.body)(&[]))))
            .unwrap());
    }
    let delay = rules
        .delays
        .lock()
        .unwrap()
        .iter()
        .find(|d| text.contains(&d.marker))
        .map(|d| d.by);
    // The storm only touches requests that no rule above claimed.
    let storm = if reply.is_none() && delay.is_none() {
        let picked = rules
            .storm
            .lock()
            .unwrap()
            .as_mut()
            .map(|s| (s.pick(), s.slow_by));
        if let Some((kind, _)) = picked {
            *rules.storm_counts.lock().unwrap().entry(kind).or_default() += 1;
        }
        picked
    } else {
        None
    };
    let delay = match storm {
        Some((StormFault::Slow, by)) => Some(by),
        _ => delay,
    };
    if let Some((kind, _)) = storm {
        let (status, error_type) = match kind {
            StormFault::Throttled => (429, "TooManyRequestsException"),
            StormFault::Internal => (500, "InternalServerError"),
            StormFault::Unavailable => (503, "ServiceUnavailableException"),
            StormFault::Reset => {
                return Err("storm: connection reset before the request reached moto".into());
            }
            _ => (0, ""),
        };
        if status != 0 {
            let payload = serde_json::json!({"message": format!("storm: {}", kind.label())});
            return Ok(hyper::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("x-amzn-errortype", error_type)
                .body(Full::new(bytes::Bytes::from(payload.to_string())))
                .unwrap());
        }
    }
    let page_size = rules
        .paginate
        .lock()
        .unwrap()
        .as_ref()
        .filter(|(marker, _)| parts.method == hyper::Method::GET && text.contains(marker))
        .map(|(_, size)| *size);
    // Our page tokens are offsets into moto's full list.
    let page_offset: usize = parts
        .uri
        .query()
        .unwrap_or_default()
        .split('&')
        .find_map(|kv| kv.strip_prefix("nextToken="))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
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
    let resp = match client.request(fwd.body(Full::new(body)).unwrap()).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(hyper::Response::builder()
                .status(502)
                .body(Full::new(bytes::Bytes::from(e.to_string())))
                .unwrap());
        }
    };
    let (mut parts, body) = resp.into_parts();
    let mut body = body.collect().await?.to_bytes();
    if let Some(page_size) = page_size.filter(|_| parts.status == 200)
        && let Some(page) = one_page(&body, page_offset, page_size)
    {
        rules.pages.fetch_add(1, Ordering::SeqCst);
        if page_offset > 0 {
            rules.follow_ups.fetch_add(1, Ordering::SeqCst);
        }
        body = page;
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
    }
    if let Some(r) = reply {
        rules.injected.fetch_add(1, Ordering::SeqCst);
        body = bytes::Bytes::from((r.body)(&body));
        parts.headers.remove(hyper::header::CONTENT_LENGTH);
        if let Some(status) = r.status {
            parts.status = hyper::StatusCode::from_u16(status).unwrap();
        }
        if let Some(ct) = &r.content_type {
            parts
                .headers
                .insert(hyper::header::CONTENT_TYPE, ct.parse().unwrap());
        }
    }
    if let Some(by) = delay {
        // moto has done the work; only the answer is late, as when AWS acts but the reply is slow or lost.
        rules.delayed.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(by).await;
    }
    if matches!(storm, Some((StormFault::Lost, _))) {
        return Err("storm: moto's answer lost on the way back".into());
    }
    Ok(hyper::Response::from_parts(parts, Full::new(body)))
}

/// One page of a listing answer `{"items": [...]}`: items[offset..offset+size], with a nextToken when more
/// follow. None when the body is not such a listing.
fn one_page(body: &[u8], offset: usize, size: usize) -> Option<bytes::Bytes> {
    let mut listing: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = listing.get("items")?.as_array()?.clone();
    let end = (offset + size).min(items.len());
    let page: Vec<serde_json::Value> = items.get(offset.min(end)..end)?.to_vec();
    listing["items"] = serde_json::Value::Array(page);
    match listing.as_object_mut() {
        Some(o) if end < items.len() => {
            o.insert("nextToken".into(), end.to_string().into());
        }
        Some(o) => {
            o.remove("nextToken");
        }
        None => return None,
    }
    Some(bytes::Bytes::from(listing.to_string()))
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
        ("GET", ["v2", "apis", _, "integrations", _, "integrationresponses"]) => {
            "GetIntegrationResponses"
        }
        ("POST", ["v2", "apis", _, "integrations", _, "integrationresponses"]) => {
            "CreateIntegrationResponse"
        }
        (
            "GET",
            [
                "v2",
                "apis",
                _,
                "integrations",
                _,
                "integrationresponses",
                _,
            ],
        ) => "GetIntegrationResponse",
        (
            "PATCH",
            [
                "v2",
                "apis",
                _,
                "integrations",
                _,
                "integrationresponses",
                _,
            ],
        ) => "UpdateIntegrationResponse",
        (
            "DELETE",
            [
                "v2",
                "apis",
                _,
                "integrations",
                _,
                "integrationresponses",
                _,
            ],
        ) => "DeleteIntegrationResponse",
        ("GET", ["v2", "vpclinks"]) => "GetVpcLinks",
        ("GET", ["v2", "apis", _, "routes"]) => "GetRoutes",
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
        // An integration's responses name it too.
        [
            "v2",
            "apis",
            _,
            "integrations",
            id,
            "integrationresponses",
            ..,
        ] => Some(id.to_string()),
        _ => None,
    };
    (op.to_string(), integration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_apigatewayv2 as apigw;

    /// A client signing with `key`, sending each call once (no SDK retry), to `endpoint`.
    fn client(endpoint: &str, key: &str) -> apigw::Client {
        let config = apigw::Config::builder()
            .behavior_version_latest()
            .region(apigw::config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(apigw::config::Credentials::new(
                key, "secret", None, None, "test",
            ))
            .retry_config(apigw::config::retry::RetryConfig::disabled())
            .build();
        apigw::Client::from_conf(config)
    }

    #[test]
    fn the_quota_answer_has_api_gateways_shape() {
        use http_body_util::BodyExt;
        let answer = too_many_requests();
        assert_eq!(answer.status(), 429);
        let h = answer.headers();
        assert_eq!(h["x-amzn-errortype"], "TooManyRequestsException");
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["x-amzn-requestid"].len(), 36);
        let body = rt()
            .block_on(answer.into_body().collect())
            .unwrap()
            .to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, serde_json::json!({"message": "Too Many Requests"}));
    }

    /// Through the proxy with a quota of 1/s, burst 2, in front of nothing (an admitted call gets 502):
    /// the third call at once is refused, and aws-sdk-apigatewayv2 reads the refusal as
    /// TooManyRequestsException, a code the AWS SDK's retry classifier counts as throttling; another
    /// signing key is another account with its own bucket; STS-style requests are not counted.
    #[test]
    fn the_sdk_reads_the_quota_answer_as_throttling() {
        use aws_sdk_apigatewayv2::error::ProvideErrorMetadata;
        let nothing = format!("http://127.0.0.1:{}", crate::runtime::free_port());
        let proxy = FaultProxy::start_to(&nothing);
        proxy.keep_quota(Quota {
            rate: 1.0,
            burst: 2,
        });
        let a = client(&proxy.endpoint, "AKIDACCOUNTA");
        // No call can succeed: nothing stands behind the proxy.
        let list = |c: &apigw::Client| {
            rt().block_on(c.get_integrations().api_id("a1").send())
                .expect_err("nothing behind the proxy")
        };
        for _ in 0..2 {
            let admitted = list(&a);
            assert_eq!(
                admitted.raw_response().map(|r| r.status().as_u16()),
                Some(502),
                "admitted, then nothing behind the proxy answers"
            );
        }
        let refused = list(&a);
        assert_eq!(
            refused.raw_response().map(|r| r.status().as_u16()),
            Some(429)
        );
        let service = refused.into_service_error();
        assert!(service.is_too_many_requests_exception(), "{service:?}");
        assert_eq!(service.code(), Some("TooManyRequestsException"));
        assert_eq!(service.message(), Some("Too Many Requests"));
        assert!(
            aws_runtime::retries::classifiers::THROTTLING_ERRORS
                .contains(&"TooManyRequestsException"),
            "the SDK's retry classifier counts the code as throttling"
        );
        // Another account is not held back by A's spent burst.
        let b = client(&proxy.endpoint, "AKIDACCOUNTB");
        assert_eq!(
            list(&b).raw_response().map(|r| r.status().as_u16()),
            Some(502)
        );
        let counts = proxy.quota_counts();
        assert_eq!(
            counts["AKIDACCOUNTA"],
            QuotaCount {
                admitted: 2,
                throttled: 1
            }
        );
        assert_eq!(counts["AKIDACCOUNTB"].admitted, 1);
        let calls = proxy.calls_since(0, None);
        assert_eq!(
            calls.iter().filter(|c| c.over_quota).count(),
            1,
            "{calls:#?}"
        );
        assert!(calls.iter().all(|c| {
            c.account
                .as_deref()
                .is_some_and(|k| k.starts_with("AKIDACCOUNT"))
        }));
        // STS (POST /) passes the quota untouched even with A's burst spent.
        let sts = rt().block_on(async {
            use http_body_util::Full;
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http::<Full<bytes::Bytes>>();
            let req = hyper::Request::post(format!("{}/", proxy.endpoint))
                .header(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDACCOUNTA/20261207/us-east-1/sts/aws4_request",
                )
                .body(Full::new(bytes::Bytes::from_static(
                    b"Action=GetCallerIdentity&Version=2011-06-15",
                )))
                .unwrap();
            client.request(req).await.unwrap().status().as_u16()
        });
        assert_eq!(sts, 502, "STS is not throttled by API Gateway's quota");
        assert_eq!(proxy.quota_counts()["AKIDACCOUNTA"].throttled, 1);
    }

    #[test]
    fn the_proxy_names_each_operation() {
        let op = |m, p| classify(m, p, b"", None);
        assert_eq!(
            op("POST", "/v2/apis/a1/integrations").0,
            "CreateIntegration"
        );
        assert_eq!(
            op("PATCH", "/v2/apis/a1/integrations/i9"),
            ("UpdateIntegration".to_string(), Some("i9".to_string()))
        );
        assert_eq!(op("GET", "/v2/apis/a1/integrations").0, "GetIntegrations");
        assert_eq!(op("GET", "/v2/apis/a1/routes").0, "GetRoutes");
        let responses = "/v2/apis/a1/integrations/i9/integrationresponses";
        assert_eq!(
            op("GET", responses),
            (
                "GetIntegrationResponses".to_string(),
                Some("i9".to_string())
            )
        );
        assert_eq!(op("POST", responses).0, "CreateIntegrationResponse");
        for (method, name) in [
            ("GET", "GetIntegrationResponse"),
            ("PATCH", "UpdateIntegrationResponse"),
            ("DELETE", "DeleteIntegrationResponse"),
        ] {
            let path = format!("{responses}/r1");
            assert_eq!(classify(method, &path, b"", None).0, name);
        }
        assert_eq!(op("GET", "/v2/apis/a1/integrations/i9").0, "GetIntegration");
        assert_eq!(
            op("DELETE", "/v2/apis/a1/integrations/i9").0,
            "DeleteIntegration"
        );
        assert_eq!(
            classify(
                "POST",
                "/",
                b"Action=GetCallerIdentity&Version=2011-06-15",
                None
            )
            .0,
            "sts:GetCallerIdentity"
        );
        assert_eq!(
            classify(
                "POST",
                "/",
                b"{}",
                Some("AWSSecurityTokenServiceV20110615.GetCallerIdentity")
            )
            .0,
            "sts:GetCallerIdentity"
        );
    }
}
