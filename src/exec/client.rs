//! The one HTTP client every request goes through: no redirects followed, the engagement's
//! TLS trust (system roots, `tls.ca_cert`, mutual TLS, `insecure_skip_verify`), its proxy
//! (`proxy:`/`--proxy`, else `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`), its extra headers and
//! rolegrid's User-Agent. And one request on it, with the run's politeness: the rate limit,
//! retries on connection failures and Retry-After, the body cap, the latency sample and
//! the note of off-target redirects. Sessions (which credential, is it still alive) are
//! `session.rs`'s business.

use super::{Exchange, Executor, Outcome, HEADERS_KEPT, OFFSITE_REDIRECTS_KEPT};
use crate::engagement::{Engagement, USER_AGENT};
use crate::request::{Credential, RequestSpec};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Builds the client for `engagement`; the error says which key to fix.
pub fn build(engagement: &Engagement) -> Result<reqwest::Client, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    for header in &engagement.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|e| format!("header `{}`: {e}", header.name))?;
        let mut value = HeaderValue::from_str(header.value.expose()).map_err(|_| {
            format!(
                "the value of header `{}` is not a valid header value",
                header.name
            )
        })?;
        value.set_sensitive(header.secret);
        headers.insert(name, value);
    }
    let mut builder = reqwest::Client::builder()
        // Never followed: a redirect is an answer (and one off the target is recorded).
        .redirect(reqwest::redirect::Policy::none())
        .timeout(engagement.timeout)
        .connect_timeout(engagement.timeout.min(Duration::from_secs(5)))
        .pool_max_idle_per_host(engagement.concurrency)
        .default_headers(headers);
    let tls = &engagement.tls;
    if let Some((path, pem)) = &tls.ca_cert {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| format!("tls.ca_cert {}: {e}", path.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let Some((path, pem)) = &tls.client_identity {
        let identity = reqwest::Identity::from_pem(pem.expose().as_bytes())
            .map_err(|e| format!("tls.client_cert {}: {e}", path.display()))?;
        builder = builder.identity(identity);
    }
    if tls.insecure_skip_verify {
        builder = builder.danger_accept_invalid_certs(true);
    }
    if let Some(proxy) = &engagement.proxy {
        let proxy = reqwest::Proxy::all(proxy.as_str())
            .map_err(|e| format!("proxy `{proxy}`: {e}"))?
            .no_proxy(reqwest::NoProxy::from_env());
        builder = builder.proxy(proxy);
    }
    // Without one, reqwest reads HTTPS_PROXY/HTTP_PROXY/ALL_PROXY/NO_PROXY itself.
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// TLS failures told apart by words of the error chain (any of them; `a&b` needs both),
/// and what to change for each, first match wins.
const TLS_HINTS: &[(&[&str], &str)] = &[
    (
        &["certificaterequired", "certificate required", "handshakefailure&alert"],
        "the server asks for a client certificate (mutual TLS): set `tls.client_cert` and `tls.client_key` in the engagement to PEM files the server's CA signed",
    ),
    (
        &["notvalidforname", "not valid for name"],
        "the target's certificate does not name the host in `target`: use the host name the certificate was issued for",
    ),
    (
        &["expired&certificate"],
        "the target's certificate has expired (or this machine's clock is wrong)",
    ),
    (
        &[
            "unknownissuer",
            "unknown issuer",
            "invalid peer certificate",
            "badsignature",
            "self-signed",
            "self signed",
        ],
        "the target's certificate is not signed by a trusted CA: set `tls.ca_cert` in the engagement to the PEM of the CA that signed it (for a proxy such as Burp or ZAP, its CA); `tls.insecure_skip_verify: true` skips the check, for throw-away test deployments only",
    ),
];

/// What to change when a request failed on TLS, read from the error chain's text.
pub fn tls_hint(error_text: &str) -> Option<&'static str> {
    let t = error_text.to_ascii_lowercase();
    TLS_HINTS
        .iter()
        .find(|(markers, _)| {
            markers
                .iter()
                .any(|marker| marker.split('&').all(|word| t.contains(word)))
        })
        .map(|(_, hint)| *hint)
}

/// Spaces requests evenly to stay under a requests-per-second ceiling.
pub(super) struct RateLimiter {
    interval: Duration,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    pub(super) fn new(per_second: f64) -> Self {
        RateLimiter {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    pub(super) async fn wait(&self) {
        let at = {
            let mut next = self.next.lock().await;
            let now = tokio::time::Instant::now();
            let at = (*next).max(now);
            *next = at + self.interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// Connection failures are retried this many times; an HTTP answer never is, except a
/// 429/503 whose Retry-After asks for it.
const RETRIES: u32 = 2;
/// The longest Retry-After rolegrid honours; a longer one is recorded as the answer.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

impl Executor {
    fn note_answer(&self, method: &str, url: &str, exchange: &Exchange) {
        if exchange.status.is_some() {
            self.answered.fetch_add(1, Ordering::Relaxed);
        } else if let Some(error) = &exchange.error {
            if let Ok(mut first) = self.first_failure.lock() {
                first.get_or_insert_with(|| error.clone());
            }
        }
        let redirect = exchange.status.is_some_and(|s| (300..400).contains(&s));
        let (true, Some(location)) = (redirect, exchange.location.as_deref()) else {
            return;
        };
        let Ok(to) = self.base.join(location) else {
            return;
        };
        if to.origin() == self.base.origin() {
            return;
        }
        if let Ok(mut kept) = self.offsite_redirects.lock() {
            let line = format!(
                "{method} {url} answered {} → {} (another origin; not followed)",
                exchange.status.unwrap_or_default(),
                self.redactor.scrub(to.as_str())
            );
            if kept.len() < OFFSITE_REDIRECTS_KEPT && !kept.contains(&line) {
                kept.push(line);
            }
        }
    }

    /// One request with the run's politeness: the rate limit, retries on connection
    /// failures (safe methods, or when nothing reached the server), and Retry-After on
    /// 429/503.
    pub(super) async fn send_attempts(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
        operation: &str,
    ) -> Exchange {
        let mut attempt = 0;
        // Faults of attempts retried away stay on the answer: the report counts them.
        let mut met = Vec::new();
        loop {
            if let Some(rate) = &self.rate {
                rate.wait().await;
            }
            let (mut exchange, connect_failed) = self
                .send_once(request, identity, credential, Some(operation))
                .await;
            met.extend(crate::fault::classify(&exchange));
            exchange.faults.clone_from(&met);
            attempt += 1;
            if attempt > RETRIES {
                return exchange;
            }
            if exchange.status.is_none() && exchange.error.is_some() {
                if connect_failed || request.method.is_safe() {
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt * attempt)))
                        .await;
                    continue;
                }
                return exchange;
            }
            if matches!(exchange.status, Some(429) | Some(503)) {
                match exchange.retry_after.filter(|d| *d <= MAX_RETRY_AFTER) {
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    None => return exchange,
                }
            }
            return exchange;
        }
    }

    /// One request taken as it comes: no latency sample, no retry, and no lost-session
    /// recovery (a 401 stays a 401). For checks whose point is the raw answer, such as a
    /// forged `Origin` or a path outside the spec (the posture checks).
    pub async fn send_aside(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
    ) -> Exchange {
        if let Some(rate) = &self.rate {
            rate.wait().await;
        }
        self.send_once(request, identity, credential, None).await.0
    }

    /// One attempt; the flag says the connection could not be made (nothing was sent).
    /// Its latency is recorded under `operation`, if one is given.
    async fn send_once(
        &self,
        request: &RequestSpec,
        identity: usize,
        credential: Credential,
        operation: Option<&str>,
    ) -> (Exchange, bool) {
        let url = self.url_for(request);
        let parts = match self.credential_parts(identity, credential, request.method.is_safe()) {
            Ok(parts) => parts,
            Err(reason) => return (error_exchange(reason), false),
        };
        let (exchange, connect_failed) = self.send_plain(request, &url, parts).await;
        self.note_answer(
            request.method.as_str(),
            &self.redactor.scrub(&url),
            &exchange,
        );
        if let (None, true, Some(operation)) = (&exchange.error, self.record_latency, operation) {
            let outcome = if exchange.is_success() {
                Outcome::Allowed
            } else {
                Outcome::Denied
            };
            let identity = self
                .sessions
                .get(identity)
                .map(|s| s.identity.name.as_str());
            self.latency
                .record_for(operation, identity, Some(outcome), exchange.latency);
        }
        (exchange, connect_failed)
    }
}

impl Executor {
    /// `request` to `url` with `parts` carrying the credential, sent once and timed; the
    /// flag says the connection could not be made.
    pub(super) async fn send_plain(
        &self,
        request: &RequestSpec,
        url: &str,
        parts: super::auth::Parts,
    ) -> (Exchange, bool) {
        let method = match reqwest::Method::from_bytes(request.method.as_str().as_bytes()) {
            Ok(m) => m,
            Err(e) => return (error_exchange(format!("bad method: {e}")), false),
        };
        let mut builder = parts.apply(self.client.request(method, url));
        for (name, value) in &request.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(json) = &request.json {
            builder = builder
                .header("content-type", "application/json")
                .body(json.to_string());
        }
        let started = Instant::now();
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut connect_failed = false;
        let mut exchange = match builder.send().await {
            Err(e) => {
                connect_failed = e.is_connect();
                error_exchange(self.redactor.scrub(&describe_error(&e)))
            }
            Ok(response) => read_response(response, self.body_cap).await,
        };
        if exchange.truncated {
            self.truncated.fetch_add(1, Ordering::Relaxed);
        }
        exchange.latency = started.elapsed();
        (exchange, connect_failed)
    }
}

pub(super) fn error_exchange(reason: String) -> Exchange {
    Exchange {
        error: Some(reason),
        ..Exchange::default()
    }
}

pub(super) fn describe_error(e: &reqwest::Error) -> String {
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
    if let Some(hint) = tls_hint(&text) {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    text
}

/// Reads the answer chunk by chunk, keeping at most `cap` bytes of body: the rest is left
/// unread (the connection is dropped) and the exchange flagged `truncated`. A body that
/// trickles is bounded by the client's whole-request timeout.
async fn read_response(mut response: reqwest::Response, cap: usize) -> Exchange {
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
    let link = header(reqwest::header::LINK);
    // Set-Cookie is kept without its value (it may carry a session): the posture checks
    // judge the cookie's attributes.
    let headers = response
        .headers()
        .iter()
        .filter_map(|(k, v)| {
            let text = v.to_str().ok()?;
            let text = if *k == reqwest::header::SET_COOKIE {
                crate::posture::cookies::withhold_value(text)
            } else {
                text.to_string()
            };
            Some((k.as_str().to_string(), text))
        })
        .take(HEADERS_KEPT)
        .collect();
    let retry_after = header(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let mut body = Vec::new();
    let mut truncated = false;
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = cap.saturating_sub(body.len());
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
        link,
        retry_after,
        error,
        headers,
        faults: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_errors_name_the_key_that_fixes_them() {
        let unknown = "connection failed: error sending request: client error (Connect): invalid peer certificate: UnknownIssuer";
        assert!(tls_hint(unknown).is_some_and(|h| h.contains("tls.ca_cert")));
        let mtls = "request failed: connection error: received fatal alert: CertificateRequired";
        assert!(tls_hint(mtls).is_some_and(|h| h.contains("tls.client_cert")));
        let name = "invalid peer certificate: NotValidForName";
        assert!(tls_hint(name).is_some_and(|h| h.contains("host name")));
        assert!(tls_hint("connection failed: Connection refused (os error 111)").is_none());
    }
}
