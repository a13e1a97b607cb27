//! Transport checks on https targets, one request each: plain `http://` on the target's
//! host must answer with a redirect to `https://` (or not at all; asked only when that
//! origin is in the engagement's `scope:`), and when the engagement skips certificate
//! checks (`tls: insecure_skip_verify`), what a verifying client says of the certificate.

use super::{Check, PostureBook, Spot};
use crate::engagement::{Engagement, Redactor};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// The http URL the redirect check asks: the target's host on `http_port`, or on port
/// 80 when the target is on https's default port; `None` when neither is known.
pub fn http_url(target: &url::Url, http_port: Option<u16>) -> Option<url::Url> {
    let port = match (http_port, target.port()) {
        (Some(p), _) => p,
        (None, None) => 80,
        (None, Some(_)) => return None,
    };
    let mut url = target.clone();
    url.set_scheme("http").ok()?;
    url.set_port(if port == 80 { None } else { Some(port) })
        .ok()?;
    url.set_path("/");
    url.set_query(None);
    Some(url)
}

/// Whether a plain-http answer sends the browser to https.
pub fn redirects_to_https(status: u16, location: Option<&str>) -> bool {
    (300..400).contains(&status) && location.is_some_and(|l| l.starts_with("https://"))
}

/// Runs both checks on an https target; the number of requests sent.
pub async fn run(
    engagement: &Engagement,
    http_port: Option<u16>,
    redactor: &Redactor,
    book: &mut PostureBook,
) -> usize {
    if engagement.target.scheme() != "https" {
        return 0;
    }
    let mut sent = 0;
    // No credential, no engagement header: the request goes out in the clear.
    let mut plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT);
    if let Some(proxy) = engagement
        .proxy
        .as_ref()
        .and_then(|p| reqwest::Proxy::all(p.as_str()).ok())
    {
        plain = plain.proxy(proxy);
    }
    // Plain http is another origin: asked only when the engagement's `scope:` lists it.
    let in_scope = |url: &url::Url| engagement.scope.iter().any(|s| s.origin() == url.origin());
    let url = http_url(&engagement.target, http_port).filter(in_scope);
    if let (Some(url), Ok(client)) = (url, plain.build()) {
        sent += 1;
        // Nothing listening on http is fine: nothing can be downgraded.
        if let Ok(answer) = client.get(url.as_str()).send().await {
            let status = answer.status().as_u16();
            let location = answer
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            if !redirects_to_https(status, location.as_deref()) {
                let to = location.map(|l| format!(" → {l}")).unwrap_or_default();
                book.note(
                    Spot::new(
                        Check::HttpNotRedirected,
                        redactor.scrub(&format!(
                            "plain http answered {status}{to} instead of a redirect to https: the first request of a visit can be read and changed on the way (redirect every http request, and send HSTS)"
                        )),
                    ),
                    "GET /",
                    url.as_str(),
                    "anonymous",
                );
            }
        }
    }
    if engagement.tls.insecure_skip_verify {
        let mut strict = engagement.clone();
        strict.tls.insecure_skip_verify = false;
        strict.timeout = TIMEOUT;
        if let Ok(client) = crate::exec::client::build(&strict) {
            sent += 1;
            if let Err(e) = client.get(engagement.target.as_str()).send().await {
                let mut chain = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    chain.push_str(&format!(": {s}"));
                    source = s.source();
                }
                if chain.to_ascii_lowercase().contains("certificate") {
                    book.note(
                        Spot::new(
                            Check::TlsCertificate,
                            redactor.scrub(&format!(
                                "the certificate does not verify (the engagement skips the check): {chain} (serve a certificate a public or the clients' CA signed, for this host, unexpired)"
                            )),
                        ),
                        "GET /",
                        engagement.target.as_str(),
                        "anonymous",
                    );
                }
            }
        }
    }
    sent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_url_keeps_the_host_and_takes_the_http_port() {
        let t = |s: &str| url::Url::parse(s).expect("url");
        assert_eq!(
            http_url(&t("https://api.example.com/v1"), None).map(String::from),
            Some("http://api.example.com/".into())
        );
        assert_eq!(
            http_url(&t("https://127.0.0.1:8443/"), Some(8080)).map(String::from),
            Some("http://127.0.0.1:8080/".into())
        );
        assert_eq!(http_url(&t("https://127.0.0.1:8443/"), None), None);
    }

    #[test]
    fn only_a_redirect_to_https_passes() {
        assert!(redirects_to_https(301, Some("https://api.example.com/")));
        assert!(!redirects_to_https(
            302,
            Some("http://api.example.com/login")
        ));
        assert!(!redirects_to_https(200, None));
        assert!(!redirects_to_https(404, None));
    }
}
