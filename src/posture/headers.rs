//! Response-header checks over one answer: `X-Content-Type-Options`, framing protection
//! (`frame-ancestors` or `X-Frame-Options`), `Cache-Control: no-store` on authenticated
//! answers, version banners (`Server`, `X-Powered-By`…) and HSTS on https targets.

use super::{Check, Spot};
use crate::exchange::Exchange;

/// HSTS shorter than this (180 days) protects too briefly to count.
const HSTS_MIN_SECONDS: u64 = 15_552_000;

fn header<'a>(e: &'a Exchange, name: &str) -> Option<&'a str> {
    e.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The header weaknesses of one answer. Security headers are judged on answers with a
/// body (an empty 204 or a redirect renders nothing); banners and HSTS on every answer.
pub fn check(e: &Exchange, https: bool, authenticated: bool) -> Vec<Spot> {
    let mut out = Vec::new();
    let status = e.status.unwrap_or(0);
    let rendered = !e.body.is_empty() && !(300..400).contains(&status);
    if rendered
        && !header(e, "x-content-type-options")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("nosniff"))
    {
        out.push(Spot::new(
            Check::MissingNosniff,
            format!(
                "answer {status} has no `X-Content-Type-Options: nosniff`: a browser may sniff the body as another type (add the header to every response)"
            ),
        ));
    }
    let csp_frames = header(e, "content-security-policy")
        .is_some_and(|v| v.to_ascii_lowercase().contains("frame-ancestors"));
    let xfo = header(e, "x-frame-options").is_some_and(|v| {
        let v = v.trim().to_ascii_uppercase();
        v == "DENY" || v == "SAMEORIGIN"
    });
    if rendered && !csp_frames && !xfo {
        out.push(Spot::new(
            Check::MissingFrameProtection,
            format!(
                "answer {status} has neither a CSP `frame-ancestors` nor `X-Frame-Options: DENY|SAMEORIGIN`: any site may frame it (clickjacking)"
            ),
        ));
    }
    let success = (200..300).contains(&status);
    if authenticated && success && !e.body.is_empty() {
        let cache = header(e, "cache-control").unwrap_or("");
        if !cache.to_ascii_lowercase().contains("no-store") {
            let was = if cache.is_empty() {
                "no Cache-Control".to_string()
            } else {
                format!("`Cache-Control: {cache}`")
            };
            out.push(Spot::new(
                Check::CacheableAuthenticated,
                format!(
                    "an authenticated answer {status} carries {was}: browsers and proxies may keep the caller's data (send `Cache-Control: no-store`)"
                ),
            ));
        }
    }
    let mut banners = Vec::new();
    if let Some(server) = header(e, "server").filter(|v| v.chars().any(|c| c.is_ascii_digit())) {
        banners.push(format!("`Server: {}`", short(server)));
    }
    for name in ["x-powered-by", "x-aspnet-version", "x-aspnetmvc-version"] {
        if let Some(v) = header(e, name) {
            banners.push(format!("`{name}: {}`", short(v)));
        }
    }
    if !banners.is_empty() {
        out.push(Spot::new(
            Check::VersionDisclosure,
            format!(
                "the answer names its software: {} (drop the version banners)",
                banners.join(", ")
            ),
        ));
    }
    if https {
        match header(e, "strict-transport-security").map(max_age) {
            None => out.push(Spot::new(
                Check::MissingHsts,
                "an https answer has no `Strict-Transport-Security`: a first visit can be downgraded to http (send `max-age=31536000; includeSubDomains`)",
            )),
            Some(age) if age.unwrap_or(0) < HSTS_MIN_SECONDS => out.push(Spot::new(
                Check::MissingHsts,
                format!(
                    "`Strict-Transport-Security` max-age is {}s, under 180 days (use at least 15552000)",
                    age.unwrap_or(0)
                ),
            )),
            Some(_) => {}
        }
    }
    out
}

fn max_age(value: &str) -> Option<u64> {
    value.split(';').find_map(|part| {
        let (k, v) = part.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

/// A header value cut for a report line.
fn short(v: &str) -> String {
    v.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)]) -> Exchange {
        crate::posture::test_answer(status, "{\"id\":1}", headers)
    }

    fn checks(e: &Exchange, https: bool, authenticated: bool) -> Vec<Check> {
        check(e, https, authenticated)
            .into_iter()
            .map(|s| s.check)
            .collect()
    }

    const SECURE: &[(&str, &str)] = &[
        ("x-content-type-options", "nosniff"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("cache-control", "no-store"),
        ("server", "portal"),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
    ];

    #[test]
    fn a_hardened_answer_passes_every_header_check() {
        assert!(checks(&answer(200, SECURE), true, true).is_empty());
        let xfo = [
            ("x-content-type-options", "NoSniff"),
            ("x-frame-options", "sameorigin"),
            ("cache-control", "private, no-store"),
        ];
        assert!(checks(&answer(200, &xfo), false, true).is_empty());
    }

    #[test]
    fn each_missing_header_is_its_own_weakness() {
        let bare = answer(200, &[]);
        assert_eq!(
            checks(&bare, true, true),
            vec![
                Check::MissingNosniff,
                Check::MissingFrameProtection,
                Check::CacheableAuthenticated,
                Check::MissingHsts
            ]
        );
        // HSTS only on https; no-store only where the caller was authenticated.
        assert_eq!(
            checks(&bare, false, false),
            vec![Check::MissingNosniff, Check::MissingFrameProtection]
        );
        let weak_hsts = answer(200, &[("strict-transport-security", "max-age=300")]);
        let reasons = check(&weak_hsts, true, false);
        assert!(reasons
            .iter()
            .any(|s| s.check == Check::MissingHsts && s.reason.contains("300s")));
        let cached = answer(200, &[("cache-control", "max-age=600")]);
        let spot = check(&cached, false, true)
            .into_iter()
            .find(|s| s.check == Check::CacheableAuthenticated)
            .expect("cacheable");
        assert!(spot.reason.contains("max-age=600"), "{}", spot.reason);
    }

    #[test]
    fn version_banners_need_a_version_or_a_powered_by() {
        let plain = [("server", "nginx")];
        assert!(!checks(&answer(200, &plain), false, false).contains(&Check::VersionDisclosure));
        let versioned = [("server", "nginx/1.18.0"), ("x-powered-by", "Express")];
        let spot = check(&answer(404, &versioned), false, false)
            .into_iter()
            .find(|s| s.check == Check::VersionDisclosure)
            .expect("banner");
        assert!(spot.reason.contains("nginx/1.18.0") && spot.reason.contains("Express"));
    }

    #[test]
    fn empty_answers_and_redirects_need_no_render_headers() {
        let mut empty = answer(204, &[]);
        empty.body.clear();
        assert!(checks(&empty, false, true).is_empty());
        let redirect = answer(302, &[]);
        assert!(checks(&redirect, false, false).is_empty());
    }
}
