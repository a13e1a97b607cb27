//! Reading an engagement file: the raw YAML shapes (unknown keys are errors), `${VAR}`
//! expansion, then one validation step per section (reach, harvest, detectors,
//! identities and `auth_file`, seed objects, reprovision), each error pointing at the
//! file's line.

use super::{
    auth, detector, expand_env, lifecycle, line_of, reach, validate_json_path, wfc, Detector,
    Engagement, EngagementError, EnvSource, ExtraHeader, Identity, MissingRows, Secret, SeedObject,
    Tls, ANONYMOUS, DEFAULT_MAX_CANARIES, DEFAULT_OWNER_FIELDS,
};
use serde::Deserialize;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngagement {
    target: String,
    spec: PathBuf,
    matrix: PathBuf,
    /// Origins besides the target's that requests may go to (an identity provider).
    #[serde(default)]
    scope: Vec<String>,
    #[serde(default)]
    tls: Option<reach::RawTls>,
    /// An HTTP(S) proxy every request goes through (Burp, ZAP).
    #[serde(default)]
    proxy: Option<String>,
    /// Extra headers on every request.
    #[serde(default)]
    headers: Vec<reach::RawHeader>,
    #[serde(default)]
    allow_mutations: bool,
    /// At most this many canary objects per scan (see `Engagement::max_canaries`).
    #[serde(default)]
    max_canaries: Option<usize>,
    /// Writes (never deletes) may go to discovered objects of resources no canary exists for.
    #[serde(default)]
    write_discovered_objects: bool,
    #[serde(default)]
    concurrency: Option<usize>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    p95_target_ms: Option<u64>,
    #[serde(default)]
    rate_limit: Option<f64>,
    #[serde(default)]
    missing_rows: Option<MissingRows>,
    #[serde(default)]
    harvest: BTreeMap<String, String>,
    /// Field names that name an object's owner in listings (default: common ones).
    #[serde(default)]
    owner_fields: Option<Vec<String>>,
    /// Objects nothing lists, given by hand.
    #[serde(default)]
    objects: Vec<RawSeedObject>,
    /// A Web Fuzzing Commons auth document (EvoMaster, Schemathesis) whose `auth` entries
    /// are identities too, relative to the engagement file.
    #[serde(default)]
    auth_file: Option<PathBuf>,
    /// Per WFC entry name: role, tenant, attributes (and `session_cookie` for cookie logins).
    #[serde(default)]
    auth_file_identities: BTreeMap<String, wfc::RawWfcIdentity>,
    #[serde(default)]
    identities: Vec<RawIdentity>,
    /// What a denial, a grant or a lost session looks like on this target.
    #[serde(default)]
    detectors: Vec<detector::RawDetector>,
    /// Operations that end sessions or wipe data (`METHOD /path` or operationId): sent
    /// only in probes the matrix says must be refused, never as a caller it allows.
    #[serde(default)]
    destructive_operations: Vec<String>,
    /// Resource → the operation that creates one (`METHOD /path` or operationId), where
    /// the spec does not make it plain (a create by an odd verb or path).
    #[serde(default)]
    creates: BTreeMap<String, String>,
    /// The request that gives an identity that can no longer log in its password back.
    #[serde(default)]
    reprovision: Option<lifecycle::RawReprovision>,
    /// Which security-posture checks run (all of them by default).
    #[serde(default)]
    posture: crate::posture::PostureOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    name: String,
    #[serde(default)]
    tenant: Option<String>,
    role: String,
    /// Values an owner field may hold for this identity (user id, email, username).
    #[serde(default)]
    attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    auth: Option<auth::RawAuth>,
    /// `${VAR}` holding the identity's password, for `reprovision`'s `{password}`.
    #[serde(default)]
    password: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeedObject {
    resource: String,
    id: serde_json::Value,
    owner: String,
}

/// The file being read, for errors that point at its lines.
struct Source<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Source<'_> {
    fn syntax(&self, e: serde_yaml_ng::Error) -> EngagementError {
        let (line, column) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        EngagementError::Syntax {
            path: self.path.to_path_buf(),
            line,
            column,
            message: e.to_string(),
        }
    }

    /// An error at the first line holding `needle`.
    fn invalid(&self, needle: &str, message: String) -> EngagementError {
        EngagementError::Invalid {
            path: self.path.to_path_buf(),
            line: line_of(self.text, needle),
            message,
        }
    }

    /// An error at the first line holding `needle` after `anchor` (inside an identity,
    /// after its `name:` line).
    fn invalid_after(&self, anchor: &str, needle: &str, message: String) -> EngagementError {
        let text = self.text;
        let from = text.find(anchor).unwrap_or(0);
        let line = text[from..]
            .find(needle)
            .map(|at| text[..from + at].matches('\n').count() + 1)
            .unwrap_or_else(|| line_of(text, anchor));
        EngagementError::Invalid {
            path: self.path.to_path_buf(),
            line,
            message,
        }
    }
}

pub(super) fn parse(
    text: &str,
    path: &Path,
    env: &EnvSource,
) -> Result<Engagement, EngagementError> {
    let src = Source { text, path };
    let mut raw = read_raw(&src, env)?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let reach = reach_section(&src, &mut raw, base_dir)?;
    check_harvest(&src, &raw.harvest)?;
    let detectors = detectors(&src, std::mem::take(&mut raw.detectors))?;

    let env_values = RefCell::new(Vec::new());
    let mut people = identities(&src, std::mem::take(&mut raw.identities), env, &env_values)?;
    auth_file_identities(
        &src,
        &mut raw,
        &reach,
        env,
        &mut env_values.borrow_mut(),
        &mut people,
    )?;
    if people.identities.is_empty() {
        return Err(src.invalid(
            "identities:",
            "at least one identity is needed (in `identities` or `auth_file`)".into(),
        ));
    }
    let seed_objects = seed_objects(&src, std::mem::take(&mut raw.objects), &people.identities)?;
    let reprovision = match raw.reprovision.take() {
        None => None,
        Some(flow) => {
            let names: Vec<String> = people.identities.iter().map(|i| i.name.clone()).collect();
            let subjects: Vec<lifecycle::Subject<'_>> = people
                .subjects
                .iter()
                .map(|(name, attributes, password)| lifecycle::Subject {
                    name,
                    attributes,
                    password: password.as_deref(),
                })
                .collect();
            Some(flow.validate(
                &subjects,
                &names,
                env,
                &mut env_values.borrow_mut(),
                &|needle, message| src.invalid(needle, message),
            )?)
        }
    };
    let destructive_operations = raw
        .destructive_operations
        .into_iter()
        .map(|op| {
            let line = line_of(text, &op);
            (op, line)
        })
        .collect();
    let engagement = Engagement {
        source: path.to_path_buf(),
        target: reach.target,
        scope: reach.scope,
        tls: reach.tls,
        proxy: reach.proxy,
        headers: reach.headers,
        spec: base_dir.join(raw.spec),
        matrix: base_dir.join(raw.matrix),
        allow_mutations: raw.allow_mutations,
        max_canaries: raw.max_canaries.unwrap_or(DEFAULT_MAX_CANARIES),
        write_discovered_objects: raw.write_discovered_objects,
        concurrency: reach.concurrency,
        timeout: Duration::from_millis(raw.timeout_ms.unwrap_or(10_000).max(1)),
        // At least 1 KiB: less would cut every error message a judge reads.
        max_body_bytes: raw
            .max_body_bytes
            .unwrap_or(super::DEFAULT_MAX_BODY_BYTES)
            .max(1024),
        p95_target_ms: raw.p95_target_ms.unwrap_or(500),
        rate_limit: raw.rate_limit,
        missing_rows: raw.missing_rows.unwrap_or_default(),
        harvest: raw.harvest,
        owner_fields: raw
            .owner_fields
            .unwrap_or_else(|| DEFAULT_OWNER_FIELDS.iter().map(|s| s.to_string()).collect()),
        owner_values: people.owner_values,
        seed_objects,
        identities: people.identities,
        detectors,
        env_values: env_values.into_inner(),
        destructive_operations,
        creates: raw
            .creates
            .into_iter()
            .map(|(resource, op)| {
                let line = line_of(text, &format!("{resource}:"));
                (resource, op, line)
            })
            .collect(),
        reprovision,
        posture: raw.posture,
    };
    engagement
        .check_scope()
        .map_err(|(needle, m)| src.invalid(&needle, m))?;
    engagement
        .posture
        .check(&engagement.identities)
        .map_err(|(needle, m)| src.invalid(&needle, m))?;
    Ok(engagement)
}

/// The YAML read once as written (errors keep their line), then with `${VAR}` expanded
/// in every string that is no credential (credentials are expanded where they are read).
fn read_raw(src: &Source<'_>, env: &EnvSource) -> Result<RawEngagement, EngagementError> {
    let text = src.text;
    let mut raw: RawEngagement = serde_yaml_ng::from_str(text).map_err(|e| src.syntax(e))?;
    if text.contains("${") {
        let mut value: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(text).map_err(|e| src.syntax(e))?;
        reach::expand_plain(&mut value, env, 0, false).map_err(|var| {
            src.invalid(
                &format!("${{{var}}}"),
                format!("environment variable `{var}` is not set; export it before running"),
            )
        })?;
        raw = serde_yaml_ng::from_value(value).map_err(|e| src.syntax(e))?;
    }
    Ok(raw)
}

/// Where requests go and how: target, concurrency, rate, scope, proxy, headers, TLS.
struct Reach {
    target: url::Url,
    concurrency: usize,
    scope: Vec<url::Url>,
    proxy: Option<url::Url>,
    headers: Vec<ExtraHeader>,
    tls: Tls,
}

fn reach_section(
    src: &Source<'_>,
    raw: &mut RawEngagement,
    base_dir: &Path,
) -> Result<Reach, EngagementError> {
    let invalid = |needle: &str, message: String| src.invalid(needle, message);
    let target = reach::check_target(&raw.target).map_err(|m| invalid("target:", m))?;
    let concurrency = raw.concurrency.unwrap_or(8);
    reach::check_concurrency(concurrency).map_err(|m| invalid("concurrency:", m))?;
    if let Some(rate) = raw.rate_limit {
        reach::check_rate(rate).map_err(|m| invalid("rate_limit:", m))?;
    }
    let mut scope = Vec::new();
    for entry in &raw.scope {
        scope.push(reach::check_origin(entry).map_err(|m| invalid(entry, m))?);
    }
    let proxy = match &raw.proxy {
        Some(text) => Some(reach::check_proxy(text).map_err(|m| invalid("proxy:", m))?),
        None => None,
    };
    let headers = reach::headers(std::mem::take(&mut raw.headers))
        .map_err(|(needle, m)| src.invalid_after("headers:", &needle, m))?;
    let tls = reach::tls(raw.tls.take(), base_dir)
        .map_err(|(needle, m)| src.invalid_after("tls:", &needle, m))?;
    Ok(Reach {
        target,
        concurrency,
        scope,
        proxy,
        headers,
        tls,
    })
}

fn check_harvest(
    src: &Source<'_>,
    harvest: &BTreeMap<String, String>,
) -> Result<(), EngagementError> {
    for (resource, json_path) in harvest {
        validate_json_path(json_path).map_err(|e| {
            src.invalid(
                json_path,
                format!("harvest path for `{resource}` is not valid JSONPath: {e}"),
            )
        })?;
    }
    Ok(())
}

fn detectors(
    src: &Source<'_>,
    raw: Vec<detector::RawDetector>,
) -> Result<Vec<Detector>, EngagementError> {
    let mut detectors: Vec<Detector> = Vec::new();
    for raw_detector in raw {
        // Errors point at the rule's `name:` line after the `detectors:` key.
        let needle = format!("name: {}", raw_detector.name_text());
        let detector = raw_detector
            .validate(&detectors)
            .map_err(|message| src.invalid_after("detectors:", &needle, message))?;
        detectors.push(detector);
    }
    Ok(detectors)
}

/// The identities, with what `reprovision` and ownership need of each.
struct People {
    identities: Vec<Identity>,
    /// Per identity: the attribute values that mean "this identity owns it".
    owner_values: Vec<Vec<String>>,
    /// (name, attributes, password) per identity, for `reprovision`.
    subjects: Vec<(String, BTreeMap<String, serde_json::Value>, Option<String>)>,
}

impl People {
    fn push(
        &mut self,
        identity: Identity,
        attributes: BTreeMap<String, serde_json::Value>,
        password: Option<String>,
    ) {
        self.owner_values.push(
            attributes
                .values()
                .filter(|v| v.is_string() || v.is_number())
                .map(crate::request::value_text)
                .collect(),
        );
        self.subjects
            .push((identity.name.clone(), attributes, password));
        self.identities.push(identity);
    }
}

/// The `identities:` entries, credentials expanded from `env` (every value used is kept
/// in `env_values`, to be redacted).
fn identities(
    src: &Source<'_>,
    raw: Vec<RawIdentity>,
    env: &EnvSource,
    env_values: &RefCell<Vec<Secret>>,
) -> Result<People, EngagementError> {
    let mut people = People {
        identities: Vec::new(),
        owner_values: Vec::new(),
        subjects: Vec::new(),
    };
    for raw_id in raw {
        let at = format!("name: {}", raw_id.name);
        if raw_id.name.trim().is_empty() {
            return Err(src.invalid("identities:", "an identity has an empty name".into()));
        }
        if people.identities.iter().any(|i| i.name == raw_id.name) {
            return Err(src.invalid(&at, format!("identity `{}` is defined twice", raw_id.name)));
        }
        if raw_id.name == ANONYMOUS {
            return Err(src.invalid(
                &at,
                "`anonymous` is built in (no credentials); remove this identity".into(),
            ));
        }
        let Some(raw_auth) = raw_id.auth else {
            return Err(src.invalid(
                &at,
                format!(
                    "identity `{}` has no `auth`; give bearer, header, cookie, basic, api_key, login or oauth2",
                    raw_id.name
                ),
            ));
        };
        let expand_here = |value: &str| {
            expand_env(value, env, &mut env_values.borrow_mut()).map_err(|var| {
                src.invalid_after(
                    &at,
                    &format!("${{{var}}}"),
                    format!(
                        "environment variable `{var}` (credential of identity `{}`) is not set; export it before running",
                        raw_id.name
                    ),
                )
            })
        };
        let invalid_here = |needle: &str, message: String| src.invalid_after(&at, needle, message);
        let auth = raw_auth.validate(&auth::Ctx {
            identity: &raw_id.name,
            expand: &expand_here,
            invalid: &invalid_here,
        })?;
        let identity = Identity {
            name: raw_id.name,
            tenant: raw_id.tenant,
            role: raw_id.role,
            attributes: raw_id.attributes.clone(),
            auth,
        };
        people.push(identity, raw_id.attributes, raw_id.password);
    }
    Ok(people)
}

/// The identities of a Web Fuzzing Commons `auth_file`, after those of `identities:`.
fn auth_file_identities(
    src: &Source<'_>,
    raw: &mut RawEngagement,
    reach: &Reach,
    env: &EnvSource,
    env_values: &mut Vec<Secret>,
    people: &mut People,
) -> Result<(), EngagementError> {
    let roles = std::mem::take(&mut raw.auth_file_identities);
    let Some(auth_file) = &raw.auth_file else {
        if !roles.is_empty() {
            return Err(src.invalid(
                "auth_file_identities:",
                "`auth_file_identities` gives roles to the entries of `auth_file`, which is not set".into(),
            ));
        }
        return Ok(());
    };
    let origin = wfc::Origin {
        engagement: src.path,
        engagement_text: src.text,
        scope: &reach.scope,
    };
    let loaded = wfc::load(&origin, auth_file, roles, &reach.target, env, env_values)?;
    for wfc::Loaded {
        identity,
        attributes,
    } in loaded
    {
        if identity.name == ANONYMOUS {
            return Err(src.invalid(
                "auth_file:",
                format!(
                    "WFC entry `{ANONYMOUS}` clashes with the built-in identity without credentials; rename it"
                ),
            ));
        }
        if people.identities.iter().any(|i| i.name == identity.name) {
            return Err(src.invalid(
                &format!("name: {}", identity.name),
                format!(
                    "identity `{}` is defined both in `identities` and in auth_file {}; names must be distinct",
                    identity.name,
                    auth_file.display()
                ),
            ));
        }
        people.push(identity, attributes, None);
    }
    Ok(())
}

/// The `objects:` entries, their owners resolved to identity indexes.
fn seed_objects(
    src: &Source<'_>,
    raw: Vec<RawSeedObject>,
    identities: &[Identity],
) -> Result<Vec<SeedObject>, EngagementError> {
    let mut seed_objects = Vec::new();
    for seed in raw {
        let Some(owner) = identities.iter().position(|i| i.name == seed.owner) else {
            return Err(src.invalid(
                "objects:",
                format!(
                    "seed object `{} {}` names owner `{}`, which is not an identity",
                    seed.resource, seed.id, seed.owner
                ),
            ));
        };
        if !(seed.id.is_string() || seed.id.is_number()) {
            return Err(src.invalid(
                "objects:",
                format!(
                    "seed object of `{}` needs a string or number id",
                    seed.resource
                ),
            ));
        }
        seed_objects.push(SeedObject {
            resource: seed.resource,
            id: seed.id,
            owner,
        });
    }
    Ok(seed_objects)
}
