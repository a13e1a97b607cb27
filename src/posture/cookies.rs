//! Session-cookie checks over one `Set-Cookie` line (its value already withheld, see
//! [`withhold_value`]): HttpOnly, Secure on https targets, SameSite, and lifetime.

use super::{Check, Spot};

/// A session cookie that outlives this (one day) is a persistent login.
const MAX_SESSION_SECONDS: i64 = 86_400;

/// The line with its value replaced, so it can be kept and shown: `name=…; attrs`, or
/// `name=; attrs` when the server cleared the cookie.
pub fn withhold_value(line: &str) -> String {
    let (pair, attrs) = match line.split_once(';') {
        Some((p, a)) => (p, Some(a)),
        None => (line, None),
    };
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    let shown = if value.trim().is_empty() { "" } else { "…" };
    match attrs {
        Some(a) => format!("{}={shown};{a}", name.trim()),
        None => format!("{}={shown}", name.trim()),
    }
}

/// Whether a cookie name looks like it carries a session (CSRF tokens are meant to be
/// read by the page's scripts, so they are left alone).
fn session_like(name: &str, declared: &[String]) -> bool {
    if declared.iter().any(|d| d.eq_ignore_ascii_case(name)) {
        return true;
    }
    let n = name.to_ascii_lowercase();
    if n.contains("csrf") || n.contains("xsrf") {
        return false;
    }
    ["sess", "sid", "auth", "token", "jwt", "login", "remember"]
        .iter()
        .any(|w| n.contains(w))
}

/// The weaknesses of one session cookie; other cookies and clearing lines give none.
pub fn check(line: &str, https: bool, declared: &[String]) -> Vec<Spot> {
    let mut parts = line.split(';');
    let pair = parts.next().unwrap_or("");
    let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
    let name = name.trim();
    if name.is_empty() || value.trim().is_empty() || !session_like(name, declared) {
        return Vec::new();
    }
    let mut http_only = false;
    let mut secure = false;
    let mut same_site = None;
    let mut max_age = None;
    let mut expires = None;
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "httponly" => http_only = true,
            "secure" => secure = true,
            "samesite" => same_site = Some(v.trim().to_ascii_lowercase()),
            "max-age" => max_age = v.trim().parse::<i64>().ok(),
            "expires" => expires = Some(v.trim().to_string()),
            _ => {}
        }
    }
    if max_age.is_some_and(|a| a <= 0) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !http_only {
        missing.push("no HttpOnly (page scripts, and so XSS, can read it)");
    }
    if https && !secure {
        missing.push("no Secure (it is sent over plain http too)");
    }
    match same_site.as_deref() {
        None => missing.push("no SameSite (cross-site requests carry it)"),
        Some("none") if !secure => missing.push("SameSite=None without Secure"),
        Some("none") => missing.push("SameSite=None (cross-site requests carry it)"),
        _ => {}
    }
    let mut out = Vec::new();
    if !missing.is_empty() {
        out.push(Spot::new(
            Check::SessionCookie,
            format!("session cookie `{name}`: {}", missing.join("; ")),
        ));
    }
    let lifetime = match (max_age, &expires) {
        (Some(age), _) if age > MAX_SESSION_SECONDS => Some(format!("Max-Age={age}")),
        (None, Some(date)) => Some(format!("Expires={date}")),
        _ => None,
    };
    // An Expires date is not parsed: any fixed date makes a persistent cookie, which is
    // what the check is about (a session should end with the browser).
    if let Some(lifetime) = lifetime {
        out.push(Spot::new(
            Check::SessionCookie,
            format!(
                "session cookie `{name}` persists ({lifetime}): it outlives the browser session (drop Max-Age/Expires or keep it under a day)"
            ),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(line: &str, https: bool) -> Vec<String> {
        check(line, https, &[])
            .into_iter()
            .map(|s| s.reason)
            .collect()
    }

    #[test]
    fn a_strict_session_cookie_passes() {
        let line = "portal_session=abc; HttpOnly; Secure; Path=/; SameSite=Lax";
        assert!(reasons(line, true).is_empty());
        assert!(reasons(
            "portal_session=abc; HttpOnly; Path=/; SameSite=Strict",
            false
        )
        .is_empty());
        assert!(reasons("sid=abc; HttpOnly; SameSite=Lax; Max-Age=3600", false).is_empty());
    }

    #[test]
    fn each_missing_attribute_is_named() {
        let r = reasons("portal_session=abc; Path=/", true);
        assert_eq!(r.len(), 1);
        for word in ["HttpOnly", "Secure", "SameSite"] {
            assert!(r[0].contains(word), "{word} in {r:?}");
        }
        // Secure is only asked of https targets.
        assert!(!reasons("sid=abc; HttpOnly; SameSite=None", false)[0].contains("no Secure"));
        assert!(reasons("sid=abc; HttpOnly; SameSite=None", false)[0].contains("without Secure"));
    }

    #[test]
    fn persistent_session_cookies_are_a_lifetime_weakness() {
        let r = reasons("sid=abc; HttpOnly; SameSite=Lax; Max-Age=2592000", false);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("Max-Age=2592000"), "{r:?}");
        let r = reasons(
            "sid=abc; HttpOnly; SameSite=Lax; Expires=Wed, 21 Oct 2037 07:28:00 GMT",
            false,
        );
        assert!(r[0].contains("persists"), "{r:?}");
    }

    #[test]
    fn other_cookies_and_clearing_lines_are_left_alone() {
        assert!(reasons("portal_csrf=abc; Path=/", true).is_empty());
        assert!(reasons("theme=dark", true).is_empty());
        assert!(reasons("portal_session=; Max-Age=0; Path=/", true).is_empty());
        assert!(reasons("portal_session=abc; Max-Age=0", true).is_empty());
        // A name the engagement declares is a session cookie whatever it is called.
        assert_eq!(check("pc=abc", false, &["pc".to_string()]).len(), 1);
    }

    #[test]
    fn withheld_lines_keep_attributes_not_values() {
        assert_eq!(
            withhold_value("portal_session=s3cr3t; HttpOnly; Path=/"),
            "portal_session=…; HttpOnly; Path=/"
        );
        assert_eq!(withhold_value("a=; Max-Age=0"), "a=; Max-Age=0");
        assert_eq!(withhold_value("a=b"), "a=…");
        // The withheld line is still judged as the cookie it was.
        assert_eq!(
            reasons(&withhold_value("portal_session=s3cr3t; Path=/"), false).len(),
            1
        );
    }
}
