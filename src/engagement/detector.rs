//! Detector rules: the engagement's own words for what a denial, a grant or a lost session
//! looks like on this target, as regexes on the body, a header or the status line. They
//! catch what generic heuristics cannot know (a 200 HTML "not permitted" page, a
//! `{"result": "nope"}` envelope) and are applied by the judge right after the status class
//! and by the executor when it decides whether a session was lost.

use regex::Regex;
use serde::Deserialize;

/// What a matching rule says about an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Means {
    /// The request was refused, whatever the status says.
    Denied,
    /// The request was served, whatever the body's shape suggests.
    Granted,
    /// The session is gone: the executor checks the identity and logs in again.
    LoggedOut,
}

impl Means {
    pub fn as_str(self) -> &'static str {
        match self {
            Means::Denied => "denied",
            Means::Granted => "granted",
            Means::LoggedOut => "logged-out",
        }
    }
}

/// Where a rule looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Body,
    /// A response header, by case-insensitive name.
    Header(String),
    /// The status code, as decimal text (`^40[13]$`).
    Status,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDetector {
    name: String,
    #[serde(rename = "in", default = "body")]
    place: String,
    pattern: String,
    means: Means,
}

fn body() -> String {
    "body".into()
}

/// One validated rule.
#[derive(Debug, Clone)]
pub struct Detector {
    pub name: String,
    pub place: Place,
    pub pattern: Regex,
    pub means: Means,
}

/// The parts of an answer a rule can look at (the judge and the executor both have them).
pub struct Answer<'a> {
    pub status: Option<u16>,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Detector {
    pub fn matches(&self, answer: &Answer<'_>) -> bool {
        match &self.place {
            Place::Body => self.pattern.is_match(&String::from_utf8_lossy(answer.body)),
            Place::Status => answer
                .status
                .is_some_and(|s| self.pattern.is_match(&s.to_string())),
            Place::Header(name) => answer
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .any(|(_, v)| self.pattern.is_match(v)),
        }
    }
}

/// The first rule (in file order) that matches `answer` and means one of `wanted`.
pub fn first_match<'d>(
    detectors: &'d [Detector],
    answer: &Answer<'_>,
    wanted: &[Means],
) -> Option<&'d Detector> {
    detectors
        .iter()
        .filter(|d| wanted.contains(&d.means))
        .find(|d| d.matches(answer))
}

impl RawDetector {
    pub(super) fn name_text(&self) -> &str {
        &self.name
    }

    /// Checks one rule; the error says what is wrong (the caller adds file:line).
    pub(super) fn validate(self, seen: &[Detector]) -> Result<Detector, String> {
        if self.name.trim().is_empty() {
            return Err("a detector has an empty `name`".into());
        }
        if seen.iter().any(|d| d.name == self.name) {
            return Err(format!("detector `{}` is defined twice", self.name));
        }
        let place = match self.place.as_str() {
            "body" => Place::Body,
            "status" => Place::Status,
            other => match other.strip_prefix("header:") {
                Some(h) if !h.trim().is_empty() => Place::Header(h.trim().to_string()),
                _ => {
                    return Err(format!(
                        "detector `{}`: `in: {other}` is not a place; write `body`, `status` or `header:Name`",
                        self.name
                    ))
                }
            },
        };
        let pattern = regex::RegexBuilder::new(&self.pattern)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| {
                format!(
                    "detector `{}`: `pattern` is not a valid regex: {}",
                    self.name,
                    e.to_string().lines().last().unwrap_or("invalid").trim()
                )
            })?;
        Ok(Detector {
            name: self.name,
            place,
            pattern,
            means: self.means,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(place: &str, pattern: &str, means: Means) -> Result<Detector, String> {
        RawDetector {
            name: "r".into(),
            place: place.into(),
            pattern: pattern.into(),
            means,
        }
        .validate(&[])
    }

    #[test]
    fn places_and_matching() {
        let headers = vec![("X-Portal-Auth".to_string(), "expired".to_string())];
        let answer = Answer {
            status: Some(200),
            headers: &headers,
            body: b"<h1>You are not permitted</h1>",
        };
        let body = rule("body", "(?i)not permitted", Means::Denied).expect("valid");
        let header = rule("header:x-portal-auth", "^expired$", Means::LoggedOut).expect("valid");
        let status = rule("status", "^40[13]$", Means::Denied).expect("valid");
        assert!(body.matches(&answer) && header.matches(&answer) && !status.matches(&answer));
        let all = [status, body, header];
        let hit = first_match(&all, &answer, &[Means::LoggedOut]).map(|d| d.means);
        assert_eq!(hit, Some(Means::LoggedOut));
    }

    #[test]
    fn bad_rules_say_why() {
        let e = rule("body", "([unclosed", Means::Denied)
            .err()
            .unwrap_or_default();
        assert!(e.contains("not a valid regex"), "{e}");
        let e = rule("cookie", "x", Means::Denied).err().unwrap_or_default();
        assert!(e.contains("header:Name"), "{e}");
    }
}
