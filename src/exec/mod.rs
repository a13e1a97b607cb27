//! Execution: one reqwest client, live sessions per identity, bounded concurrency and
//! per-request timeouts; every request becomes an [`Exchange`] and a latency sample.
//! A failed request is data (an exchange with an error), never a crash.

mod forge;
mod latency;
pub mod load;

pub use latency::{LatencyBook, LatencySummary};

use crate::engagement::{Auth, Engagement, Identity, LoginCapture, Redactor, Secret};
use crate::request::{Credential, RequestSpec};
use std::time::{Duration, Instant};

/// Bodies are kept whole up to this size; the rest is cut (and the exchange says so).
pub const BODY_CAP: usize = 1 << 20;

/// One request and what came back.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
    pub truncated: bool,
    pub latency: Duration,
    /// Connection failure, timeout, or a credential that could not be built.
    pub error: Option<String>,
}

impl Exchange {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub fn is_success(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// A credential obtained at run time, ready to attach.
#[derive(Clone)]
enum Live {
    None,
    Header { name: String, value: Secret },
    Cookie { name: String, value: Secret },
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("login of identity `{identity}` failed: {reason}")]
    Failed { identity: String, reason: String },
}

pub struct Executor {
    client: reqwest::Client,
    base: url::Url,
    sessions: Vec<Live>,
    redactor: Redactor,
    pub latency: LatencyBook,
}

impl Executor {
    pub fn new(
        engagement: &Engagement,
        base_path: &str,
        redactor: Redactor,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(engagement.timeout)
            .connect_timeout(engagement.timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(engagement.concurrency)
            .user_agent(concat!("rolegrid/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut base = engagement.target.clone();
        if base.path() == "/" && !base_path.is_empty() && base_path != "/" {
            base.set_path(base_path.trim_end_matches('/'));
        }
        Ok(Executor {
            client,
            base,
            sessions: Vec::new(),
            redactor,
            latency: LatencyBook::default(),
        })
    }

    pub fn url_for(&self, request: &RequestSpec) -> String {
        format!(
            "{}{}",
            self.base.as_str().trim_end_matches('/'),
            request.path_and_query()
        )
    }

    /// Logs every identity in; the order of `identities` is kept.
    pub async fn login_all(&mut self, identities: &[Identity]) -> Result<(), LoginError> {
        let mut sessions = Vec::with_capacity(identities.len());
        for identity in identities {
            sessions.push(self.login(identity).await?);
        }
        self.sessions = sessions;
        Ok(())
    }

    async fn login(&self, identity: &Identity) -> Result<Live, LoginError> {
        let failed = |reason: String| LoginError::Failed {
            identity: identity.name.clone(),
            reason: self.redactor.scrub(&reason),
        };
        let flow = match &identity.auth {
            Auth::None => return Ok(Live::None),
            Auth::Header { name, value } => {
                return Ok(Live::Header {
                    name: name.clone(),
                    value: value.clone(),
                })
            }
            Auth::Cookie { name, value } => {
                return Ok(Live::Cookie {
                    name: name.clone(),
                    value: value.clone(),
                })
            }
            Auth::Login(flow) => flow,
        };
        let url = format!("{}{}", self.base.as_str().trim_end_matches('/'), flow.path);
        let mut builder = self.client.request(flow.method.clone(), &url);
        if let Some(json) = &flow.json {
            builder = builder
                .header("content-type", "application/json")
                .body(json.expose().to_string());
        }
        let response = builder
            .send()
            .await
            .map_err(|e| failed(format!("{} {url}: {e}", flow.method)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(failed(format!(
                "{} {url} answered {status}; check the identity's credentials",
                flow.method
            )));
        }
        match &flow.capture {
            LoginCapture::Cookie { name } => {
                let value = response
                    .headers()
                    .get_all(reqwest::header::SET_COOKIE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .find_map(|cookie| {
                        let pair = cookie.split(';').next()?;
                        let (n, v) = pair.split_once('=')?;
                        (n.trim() == name).then(|| v.trim().to_string())
                    })
                    .ok_or_else(|| failed(format!("the login answer set no cookie `{name}`")))?;
                self.redactor.register(&value);
                Ok(Live::Cookie {
                    name: name.clone(),
                    value: Secret::new(value),
                })
            }
            LoginCapture::Token {
                json_path,
                header,
                template,
            } => {
                use jsonpath_rust::JsonPath;
                let body: serde_json::Value = response
                    .json()
                    .await
                    .map_err(|e| failed(format!("the login answer is not JSON: {e}")))?;
                let token = body
                    .query(json_path)
                    .ok()
                    .and_then(|found| found.first().and_then(|v| v.as_str()).map(str::to_string))
                    .ok_or_else(|| {
                        failed(format!("the login answer has no string at `{json_path}`"))
                    })?;
                self.redactor.register(&token);
                let value = template.replace("{token}", &token);
                self.redactor.register(&value);
                Ok(Live::Header {
                    name: header.clone(),
                    value: Secret::new(value),
                })
            }
        }
    }

    /// Sends `request` as `identity` with `credential`, and records its latency under `operation`.
    pub async fn send(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
        operation: &str,
    ) -> Exchange {
        let url = self.url_for(request);
        let method = match reqwest::Method::from_bytes(request.method.as_str().as_bytes()) {
            Ok(m) => m,
            Err(e) => return error_exchange(format!("bad method: {e}")),
        };
        let mut builder = self.client.request(method, &url);
        match self.credential_header(identity, credential) {
            Ok(Some((name, value))) => builder = builder.header(name, value.expose()),
            Ok(None) => {}
            Err(reason) => return error_exchange(reason),
        }
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(json) = &request.json {
            builder = builder
                .header("content-type", "application/json")
                .body(json.to_string());
        }
        let started = Instant::now();
        let result = builder.send().await;
        let mut exchange = match result {
            Err(e) => error_exchange(self.redactor.scrub(&describe_error(&e))),
            Ok(response) => read_response(response).await,
        };
        exchange.latency = started.elapsed();
        if exchange.error.is_none() {
            self.latency.record(operation, exchange.latency);
        }
        exchange
    }

    /// The header that carries `identity`'s credential (or its forgery); `None` for none.
    fn credential_header(
        &self,
        identity: usize,
        credential: Credential,
    ) -> Result<Option<(String, Secret)>, String> {
        let live = self.sessions.get(identity).cloned().unwrap_or(Live::None);
        let attach = |live: Live| match live {
            Live::None => None,
            Live::Header { name, value } => Some((name, value)),
            Live::Cookie { name, value } => Some((
                "cookie".to_string(),
                Secret::new(format!("{name}={}", value.expose())),
            )),
        };
        match credential {
            Credential::Normal => Ok(attach(live)),
            Credential::Omitted => Ok(None),
            Credential::Forged(forgery) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let forged_live = match live {
                    Live::None => return Err("the identity has no credential to forge".into()),
                    Live::Header { name, value } => {
                        let (prefix, token) = match value.expose().split_once(' ') {
                            Some((scheme, token)) => (format!("{scheme} "), token.to_string()),
                            None => (String::new(), value.expose().to_string()),
                        };
                        let forged = forge::forge(&token, forgery, now).map_err(str::to_string)?;
                        self.redactor.register(&forged);
                        Live::Header {
                            name,
                            value: Secret::new(format!("{prefix}{forged}")),
                        }
                    }
                    Live::Cookie { name, value } => {
                        let forged =
                            forge::forge(value.expose(), forgery, now).map_err(str::to_string)?;
                        self.redactor.register(&forged);
                        Live::Cookie {
                            name,
                            value: Secret::new(forged),
                        }
                    }
                };
                Ok(attach(forged_live))
            }
        }
    }
}

fn error_exchange(reason: String) -> Exchange {
    Exchange {
        error: Some(reason),
        ..Exchange::default()
    }
}

fn describe_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

async fn read_response(mut response: reqwest::Response) -> Exchange {
    let status = response.status().as_u16();
    let header = |name: reqwest::header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(reqwest::header::CONTENT_TYPE);
    let location = header(reqwest::header::LOCATION);
    let mut body = Vec::new();
    let mut truncated = false;
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = BODY_CAP.saturating_sub(body.len());
                if chunk.len() > room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated = true;
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("the body could not be read: {e}"));
                break;
            }
        }
    }
    Exchange {
        status: Some(status),
        content_type,
        location,
        body,
        truncated,
        latency: Duration::ZERO,
        error,
    }
}
