//! The posture checks that send requests of their own, each burst capped in count
//! ([`MAX_CORS_READS`], the corpus size, [`super::MAX_BURST`]) and in time
//! ([`BURST_TIME`]). On by default, read-only: a forged `Origin` (and its preflight) on a
//! few authenticated reads, and the debug/admin path corpus (`corpora/posture-paths.txt`)
//! as anonymous and as the narrowest role. Opt-in: a burst of failed logins and of each
//! sensitive operation the engagement names (rate limits), one identity's logout and
//! password change (its old credential must then be refused) and role change (in
//! [`super::role_change`]).

use super::{Check, Passive, PostureBook, PostureOptions, Seen, Spot};
use crate::engagement::Identity;
use crate::exchange::Exchange;
use crate::exec::Executor;
use crate::matrix::{Access, Policy};
use crate::request::{Credential, RequestSpec};
use crate::spec::{Api, Method};
use std::time::Duration;

/// The origin no real site has (`.invalid` is reserved): an answer that allows it allows
/// any origin.
pub const FORGED_ORIGIN: &str = "https://rolegrid-forged-origin.invalid";

/// Authenticated reads the CORS check sends its forged origin to (each twice: the read
/// and its preflight).
pub const MAX_CORS_READS: usize = 8;

/// The longest one burst of posture requests may take.
pub const BURST_TIME: Duration = Duration::from_secs(30);

const PATHS: &str = include_str!("../../corpora/posture-paths.txt");

/// The debug and admin paths of the corpus, in file order.
pub fn corpus_paths() -> impl Iterator<Item = &'static str> {
    PATHS.lines().map(str::trim).filter(|l| l.starts_with('/'))
}

/// One authenticated read the scan saw succeed: who, the request, its operation key.
#[derive(Debug, Clone)]
pub struct Read {
    pub identity: usize,
    pub request: RequestSpec,
    pub operation: String,
}

/// What the active checks send through and reason about.
pub struct Scene<'a> {
    pub executor: &'a Executor,
    pub api: &'a Api,
    pub policy: &'a Policy,
    pub identities: &'a [Identity],
}

/// Runs the enabled active posture checks and notes what they find in `book`; the
/// passive checks, when given, also judge the answers to the route corpus.
pub async fn run(
    scene: &Scene<'_>,
    reads: &[Read],
    options: &PostureOptions,
    passive: Option<&Passive>,
    book: &mut PostureBook,
    warnings: &mut Vec<String>,
) -> usize {
    let Scene {
        executor,
        api,
        policy,
        identities,
    } = *scene;
    let mut sent = 0;
    if options.cors {
        let _ = tokio::time::timeout(
            BURST_TIME,
            cors(executor, identities, reads, book, &mut sent),
        )
        .await;
    }
    if options.routes {
        let _ = tokio::time::timeout(
            BURST_TIME,
            routes(executor, api, policy, identities, passive, book, &mut sent),
        )
        .await;
    }
    // Before the login burst: a rate limit on logins would keep the identity from
    // logging in again with its own role.
    if let Some(change) = &options.role_change {
        let checked = tokio::time::timeout(
            BURST_TIME,
            super::role_change::run(scene, change, book, &mut sent),
        )
        .await;
        let warning = checked.unwrap_or_else(|_| {
            Some(format!(
                "it took longer than {} s; check `{}`'s role",
                BURST_TIME.as_secs(),
                change.identity
            ))
        });
        if let Some(why) = warning {
            warnings.push(format!("posture role_change: {why}"));
        }
    }
    operation_bursts(
        executor,
        identities,
        &options.operation_bursts,
        book,
        warnings,
        &mut sent,
    )
    .await;
    if let Some(burst) = &options.login_burst {
        let _ = tokio::time::timeout(
            BURST_TIME,
            login_burst(executor, identities, burst, book, &mut sent),
        )
        .await;
    }
    // Last: these end sessions, each another identity's.
    let mut changed = None;
    if options.password_change {
        changed = tokio::time::timeout(
            BURST_TIME,
            password_change(executor, identities, reads, book, &mut sent),
        )
        .await
        .ok()
        .flatten();
    }
    if let Some((method, path)) = options.logout.as_deref().and_then(parse_operation) {
        let reads: Vec<Read> = reads
            .iter()
            .filter(|r| Some(r.identity) != changed)
            .cloned()
            .collect();
        let _ = tokio::time::timeout(
            BURST_TIME,
            logout(
                executor,
                identities,
                &reads,
                (method, path),
                book,
                &mut sent,
            ),
        )
        .await;
    }
    sent
}

/// `METHOD /path` as a method and a path.
pub fn parse_operation(text: &str) -> Option<(Method, String)> {
    let (method, path) = text.trim().split_once(' ')?;
    let method = Method::ALL
        .into_iter()
        .find(|m| m.as_str().eq_ignore_ascii_case(method))?;
    let path = path.trim();
    path.starts_with('/').then(|| (method, path.to_string()))
}

/// Sends `request` as `who` up to `count` (at most [`super::MAX_BURST`]) times, one
/// after another, until one is refused as too many (429, 423, or a refusal that says
/// `locked`): `None` then, else the statuses in order. A served body that mentions
/// `locked` (an invoice's state) is no lockout.
async fn burst(
    executor: &Executor,
    request: &RequestSpec,
    (who, credential): (usize, Credential),
    count: usize,
    sent: &mut usize,
) -> Option<Vec<u16>> {
    let mut statuses = Vec::new();
    for _ in 0..count.min(super::MAX_BURST) {
        let answer = executor.send_aside(request, who, credential).await;
        *sent += 1;
        let status = answer.status.unwrap_or(0);
        let locked = status >= 400
            && String::from_utf8_lossy(&answer.body)
                .to_ascii_lowercase()
                .contains("locked");
        if matches!(status, 429 | 423) || locked {
            return None;
        }
        statuses.push(status);
    }
    Some(statuses)
}

/// `3× 401, 2× 500`: how a burst was answered.
fn tally(statuses: &[u16]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for s in statuses {
        *counts.entry(*s).or_insert(0usize) += 1;
    }
    let seen: Vec<String> = counts.iter().map(|(s, n)| format!("{n}× {s}")).collect();
    seen.join(", ")
}

/// Wrong-password logins, one after another, until one is refused as too many (429, or a
/// 423/`locked` answer) or `count` are spent; none refused is the weakness.
async fn login_burst(
    executor: &Executor,
    identities: &[Identity],
    burst: &super::LoginBurst,
    book: &mut PostureBook,
    sent: &mut usize,
) {
    let Some(anonymous) = identities.iter().position(Identity::is_anonymous) else {
        return;
    };
    let request = super::bare_request(Method::Post, burst.path.clone(), Some(burst.json.clone()));
    // The first login alone: a wrong body would burn the whole burst on successes.
    let Some(first) = self::burst(
        executor,
        &request,
        (anonymous, Credential::Omitted),
        1,
        sent,
    )
    .await
    else {
        return;
    };
    if first.first().is_some_and(|s| (200..300).contains(s)) {
        book.note(
            Spot::new(
                Check::NoLoginRateLimit,
                format!("the burst's first wrong-password login was answered {}: fix `login_burst.json` (it must fail)", first[0]),
            ),
            &format!("POST {}", burst.path),
            &executor.url_for(&request),
            "anonymous",
        );
        return;
    }
    let rest = burst.count.min(super::MAX_BURST).saturating_sub(1);
    let Some(more) = self::burst(
        executor,
        &request,
        (anonymous, Credential::Omitted),
        rest,
        sent,
    )
    .await
    else {
        return;
    };
    let statuses: Vec<u16> = first.into_iter().chain(more).collect();
    book.note(
        Spot::new(
            Check::NoLoginRateLimit,
            format!(
                "{} failed logins in a row were all answered ({}), none 429 or locked: passwords can be guessed at full speed (limit failed logins per account and per client)",
                statuses.len(),
                tally(&statuses)
            ),
        ),
        &format!("POST {}", burst.path),
        &executor.url_for(&request),
        "anonymous",
    );
}

/// Each sensitive operation the engagement names, sent in a burst as its identity; a
/// burst served at least once and never refused as too many is the weakness. A burst
/// never served says nothing (a warning: the identity may not be allowed it).
async fn operation_bursts(
    executor: &Executor,
    identities: &[Identity],
    bursts: &[super::OperationBurst],
    book: &mut PostureBook,
    warnings: &mut Vec<String>,
    sent: &mut usize,
) {
    for item in bursts.iter().take(super::MAX_OPERATION_BURSTS) {
        let Some((method, path)) = parse_operation(&item.operation) else {
            continue;
        };
        let who = match &item.actor {
            Some(name) => identities.iter().position(|i| &i.name == name),
            None => identities.iter().position(Identity::is_anonymous),
        };
        let Some(who) = who else { continue };
        let name = identities[who].name.as_str();
        let request = super::bare_request(method, path, item.json.clone());
        let credential = match identities[who].is_anonymous() {
            true => Credential::Omitted,
            false => Credential::Normal,
        };
        let burst = tokio::time::timeout(
            BURST_TIME,
            burst(executor, &request, (who, credential), item.count, sent),
        )
        .await;
        let statuses = match burst {
            Ok(Some(statuses)) => statuses,
            Ok(None) => continue,
            Err(_) => {
                warnings.push(format!(
                    "posture operation_bursts: `{}` as `{name}` took longer than {} s, so its rate limit was not judged: lower its `count`",
                    item.operation,
                    BURST_TIME.as_secs()
                ));
                continue;
            }
        };
        if !statuses.iter().any(|s| (200..300).contains(s)) {
            warnings.push(format!(
                "posture operation_bursts: `{}` as `{name}` was never served ({}), so its rate limit was not judged: name an identity allowed it",
                item.operation,
                tally(&statuses)
            ));
            continue;
        }
        book.note(
            Spot::new(
                Check::NoRateLimit,
                format!(
                    "{} `{}` requests in a row as `{name}` were all answered ({}), none 429 or locked: the operation can be driven at full speed (limit it per caller)",
                    statuses.len(),
                    item.operation,
                    tally(&statuses)
                ),
            ),
            &item.operation,
            &executor.url_for(&request),
            name,
        );
    }
}

/// The first read of each identity with a credential, at most `max` identities, in
/// `reads` order: who the session-ending checks try.
fn per_identity<'a>(
    reads: impl Iterator<Item = &'a Read>,
    identities: &[Identity],
    max: usize,
) -> Vec<&'a Read> {
    let mut out: Vec<&Read> = Vec::new();
    for read in reads {
        let has_credential = identities
            .get(read.identity)
            .is_some_and(|i| !i.is_anonymous());
        if has_credential && out.len() < max && !out.iter().any(|r| r.identity == read.identity) {
            out.push(read);
        }
    }
    out
}

/// Whether the identity's read works now (a control before its session is ended).
async fn reads_now(executor: &Executor, read: &Read, sent: &mut usize) -> bool {
    *sent += 1;
    executor
        .send_aside(&read.request, read.identity, Credential::Normal)
        .await
        .is_success()
}

/// An identity with a read that works has its password set again (`reprovision:`); the
/// same read with the old credential must then be refused. Tried from the last read
/// backwards on up to three identities (the `reprovision` sender cannot be its own
/// subject) until one password is set; that identity is returned so the logout check
/// takes others.
async fn password_change(
    executor: &Executor,
    identities: &[Identity],
    reads: &[Read],
    book: &mut PostureBook,
    sent: &mut usize,
) -> Option<usize> {
    for read in per_identity(reads.iter().rev(), identities, 3) {
        let who = read.identity;
        if !reads_now(executor, read, sent).await {
            continue;
        }
        *sent += 1;
        if executor.reprovision(who).await.is_err() {
            continue;
        }
        if reads_now(executor, read, sent).await {
            let name = &identities[who].name;
            book.note(
                Spot::new(
                    Check::SessionAfterPasswordChange,
                    format!(
                        "`{name}`'s password was set (the engagement's `reprovision` request), yet its old credential still reads `{}`: a stolen session survives a password change (end every session of the account)",
                        read.operation
                    ),
                ),
                "reprovision",
                &executor.url_for(&read.request),
                name,
            );
        }
        return Some(who);
    }
    None
}

/// Up to three identities (each kind of credential may be handled apart) with a read that
/// works log out; the same read with the old credential must then be refused.
async fn logout(
    executor: &Executor,
    identities: &[Identity],
    reads: &[Read],
    (method, path): (Method, String),
    book: &mut PostureBook,
    sent: &mut usize,
) {
    let request = super::bare_request(method, path, None);
    for read in per_identity(reads.iter(), identities, 3) {
        if !reads_now(executor, read, sent).await {
            continue;
        }
        let out = executor
            .send_aside(&request, read.identity, Credential::Normal)
            .await;
        *sent += 1;
        if !out.is_success() || !reads_now(executor, read, sent).await {
            continue;
        }
        let name = &identities[read.identity].name;
        book.note(
            Spot::new(
                Check::SessionAfterLogout,
                format!(
                    "`{name}` logged out ({} {} answered {}), yet its old credential still reads `{}`: a stolen token outlives the logout (revoke it server-side)",
                    request.method.as_str(),
                    request.path,
                    out.status.unwrap_or(0),
                    read.operation,
                ),
            ),
            &format!("{} {}", request.method.as_str(), request.path),
            &executor.url_for(&read.request),
            name,
        );
        return;
    }
}

fn header<'a>(e: &'a Exchange, name: &str) -> Option<&'a str> {
    e.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

/// What an answer's CORS headers grant a forged origin, if anything.
pub fn cors_grant(e: &Exchange) -> Option<String> {
    let origin = header(e, "access-control-allow-origin")?;
    let credentials = header(e, "access-control-allow-credentials")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if origin == FORGED_ORIGIN {
        Some(if credentials {
            "reflects a forged Origin in Access-Control-Allow-Origin and allows credentials: any site can read the caller's data"
                .to_string()
        } else {
            "reflects a forged Origin in Access-Control-Allow-Origin: any site can read the answer"
                .to_string()
        })
    } else if origin == "*" && credentials {
        Some("answers `Access-Control-Allow-Origin: *` together with `Access-Control-Allow-Credentials: true`".into())
    } else {
        None
    }
}

async fn cors(
    executor: &Executor,
    identities: &[Identity],
    reads: &[Read],
    book: &mut PostureBook,
    sent: &mut usize,
) {
    let mut operations = std::collections::BTreeSet::new();
    let authenticated = reads.iter().filter(|r| {
        identities
            .get(r.identity)
            .is_some_and(|i| !i.is_anonymous())
            && operations.insert(r.operation.as_str())
    });
    for read in authenticated.take(MAX_CORS_READS) {
        let name = identities[read.identity].name.as_str();
        let url = executor.url_for(&read.request);
        let mut request = read.request.clone();
        request
            .headers
            .push(("Origin".into(), FORGED_ORIGIN.into()));
        // Browsers send the preflight without credentials.
        let preflight = RequestSpec {
            method: Method::Options,
            path: read.request.path.clone(),
            query: read.request.query.clone(),
            headers: vec![
                ("Origin".into(), FORGED_ORIGIN.into()),
                (
                    "Access-Control-Request-Method".into(),
                    read.request.method.as_str().to_string(),
                ),
                (
                    "Access-Control-Request-Headers".into(),
                    "authorization".into(),
                ),
            ],
            json: None,
        };
        let path = read.operation.split_once(' ').map_or("", |(_, p)| p);
        let asks = [
            (
                request,
                Credential::Normal,
                format!("an authenticated read with `Origin: {FORGED_ORIGIN}`"),
                " (allow a fixed list of origins)",
                read.operation.clone(),
                name,
            ),
            (
                preflight,
                Credential::Omitted,
                format!("the preflight (OPTIONS with `Origin: {FORGED_ORIGIN}`)"),
                "",
                format!("OPTIONS {path}"),
                "anonymous",
            ),
        ];
        for (request, credential, what, advice, operation, who) in asks {
            let answer = executor
                .send_aside(&request, read.identity, credential)
                .await;
            *sent += 1;
            if let Some(grant) = cors_grant(&answer) {
                let why = format!(
                    "{what} answered {}: it {grant}{advice}",
                    answer.status.unwrap_or(0)
                );
                book.note(Spot::new(Check::Cors, why), &operation, &url, who);
            }
        }
    }
}

/// The identity whose role the matrix allows the fewest operations (not anonymous).
fn narrowest(policy: &Policy, api: &Api, identities: &[Identity]) -> Option<usize> {
    identities
        .iter()
        .enumerate()
        .filter(|(_, i)| !i.is_anonymous())
        .min_by_key(|(_, i)| {
            (0..api.operations.len())
                .filter(|&op| {
                    policy
                        .access(op, &i.role)
                        .is_some_and(|a| a != Access::Deny)
                })
                .count()
        })
        .map(|(n, _)| n)
}

/// Whether the spec declares a GET on `path` (templates match any one segment).
pub fn declared(api: &Api, path: &str) -> bool {
    let want: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    api.operations
        .iter()
        .filter(|o| o.method == Method::Get)
        .any(|o| {
            let have: Vec<&str> = o.path.trim_end_matches('/').split('/').collect();
            have.len() == want.len()
                && have
                    .iter()
                    .zip(&want)
                    .all(|(h, w)| h == w || (h.starts_with('{') && h.ends_with('}')))
        })
}

/// Whether an answer is real content, not the target's answer to any unknown path (a
/// soft 404: same status and body as for a path that cannot exist).
pub fn answers_with_content(e: &Exchange, unknown: Option<&Exchange>) -> bool {
    if !e.is_success() || e.body.iter().all(u8::is_ascii_whitespace) {
        return false;
    }
    !unknown.is_some_and(|u| u.status == e.status && u.body == e.body)
}

async fn routes(
    executor: &Executor,
    api: &Api,
    policy: &Policy,
    identities: &[Identity],
    passive: Option<&Passive>,
    book: &mut PostureBook,
    sent: &mut usize,
) {
    // The answers to these paths go through the passive checks too (a debug page, a
    // trace on the unknown-path answer).
    let observe = |book: &mut PostureBook, request: &RequestSpec, who: usize, e: &Exchange| {
        let Some(passive) = passive else { return };
        let operation = format!("GET {}", request.path);
        let seen = Seen {
            operation: &operation,
            url: &executor.url_for(request),
            identity: &identities[who].name,
            authenticated: false,
            exchange: e,
        };
        book.observe(passive, &seen);
    };
    let mut callers: Vec<usize> = identities
        .iter()
        .position(Identity::is_anonymous)
        .into_iter()
        .collect();
    callers.extend(narrowest(policy, api, identities));
    let get = |path: &str| super::bare_request(Method::Get, path.to_string(), None);
    for who in callers {
        let absent = get(&format!("/rolegrid-absent-{:08x}", rand::random::<u32>()));
        let unknown = executor.send_aside(&absent, who, Credential::Normal).await;
        *sent += 1;
        observe(book, &absent, who, &unknown);
        for path in corpus_paths().filter(|p| !declared(api, p)) {
            let request = get(path);
            let answer = executor.send_aside(&request, who, Credential::Normal).await;
            *sent += 1;
            observe(book, &request, who, &answer);
            if answers_with_content(&answer, Some(&unknown)) {
                let name = &identities[who].name;
                book.note(
                    Spot::new(
                        Check::UndocumentedRoute,
                        format!(
                            "GET {path} is not in the spec, yet answered {} with {} bytes (remove it, or declare and protect it; `identity` is the first caller it answered)",
                            answer.status.unwrap_or(0),
                            answer.body.len()
                        ),
                    ),
                    &format!("GET {path}"),
                    &executor.url_for(&request),
                    name,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::posture::test_answer as answer;

    /// A 200 whose CORS headers allow `origin`, with or without credentials.
    fn cors_answer(origin: &str, credentials: bool) -> Exchange {
        let mut headers = vec![("access-control-allow-origin", origin)];
        if credentials {
            headers.push(("access-control-allow-credentials", "true"));
        }
        answer(200, "{}", &headers)
    }

    #[test]
    fn cors_grants_to_a_forged_origin_are_weaknesses() {
        let reflected = cors_answer(FORGED_ORIGIN, true);
        assert!(cors_grant(&reflected).is_some_and(|g| g.contains("allows credentials")));
        assert!(cors_grant(&cors_answer("*", true)).is_some());
        // A public `*` without credentials, or a fixed origin, grants the forger nothing.
        assert!(cors_grant(&cors_answer("*", false)).is_none());
        assert!(cors_grant(&cors_answer("https://portal.example", true)).is_none());
        assert!(cors_grant(&answer(200, "{}", &[])).is_none());
    }

    #[test]
    fn soft_404s_and_empty_answers_are_not_content() {
        let soft = answer(200, "<html>Not here</html>", &[]);
        assert!(!answers_with_content(&soft, Some(&soft.clone())));
        assert!(answers_with_content(
            &answer(200, "DB_PASSWORD=x", &[]),
            Some(&soft)
        ));
        assert!(!answers_with_content(&answer(200, "  ", &[]), None));
        assert!(!answers_with_content(&answer(404, "nope", &[]), None));
    }

    #[test]
    fn the_corpus_starts_with_the_debug_paths() {
        let paths: Vec<&str> = corpus_paths().collect();
        assert_eq!(paths.first(), Some(&"/debug"));
        assert!(paths.contains(&"/.env") && paths.contains(&"/swagger.json"));
        assert!(paths.len() <= 40, "the corpus is a bounded burst");
    }
}
