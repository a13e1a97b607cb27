//! The one HTTP client every request goes through: no redirects followed, the engagement's
//! TLS trust (system roots, `tls.ca_cert`, mutual TLS, `insecure_skip_verify`), its proxy
//! (`proxy:`/`--proxy`, else `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`), its extra headers and
//! rolegrid's User-Agent.

use crate::engagement::{Engagement, USER_AGENT};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::Duration;

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

/// What to change when a request failed on TLS, read from the error chain's text.
pub fn tls_hint(error_text: &str) -> Option<&'static str> {
    let t = error_text.to_ascii_lowercase();
    if t.contains("certificaterequired")
        || t.contains("certificate required")
        || (t.contains("handshakefailure") && t.contains("alert"))
    {
        return Some(
            "the server asks for a client certificate (mutual TLS): set `tls.client_cert` and `tls.client_key` in the engagement to PEM files the server's CA signed",
        );
    }
    if t.contains("notvalidforname") || t.contains("not valid for name") {
        return Some(
            "the target's certificate does not name the host in `target`: use the host name the certificate was issued for",
        );
    }
    if t.contains("expired") && t.contains("certificate") {
        return Some("the target's certificate has expired (or this machine's clock is wrong)");
    }
    if t.contains("unknownissuer")
        || t.contains("unknown issuer")
        || t.contains("invalid peer certificate")
        || t.contains("badsignature")
        || t.contains("self-signed")
        || t.contains("self signed")
    {
        return Some(
            "the target's certificate is not signed by a trusted CA: set `tls.ca_cert` in the engagement to the PEM of the CA that signed it (for a proxy such as Burp or ZAP, its CA); `tls.insecure_skip_verify: true` skips the check, for throw-away test deployments only",
        );
    }
    None
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
