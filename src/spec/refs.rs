//! External `$ref`s: every fragment of another file is copied once into the root document
//! under `/x-rolegrid-external/<name>` and each reference to it becomes a local `#/...` ref.
//!
//! Copying each target once (rather than pasting it at every use site) keeps shared
//! fragments shared: a split spec such as DigitalOcean's refers to the same schema files
//! hundreds of times, and recursive schemas across files would never finish pasting. After
//! this pass the document is self-contained and [`super::Api::resolve`] can follow any ref.

use super::error::SpecError;
use super::read;
use super::walk;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

/// Where hoisted fragments live in the bundled document.
pub const EXTERNAL_KEY: &str = "x-rolegrid-external";

/// Inlines every external reference of `doc` (read from `origin`).
pub fn bundle(doc: &mut Value, origin: &Path) -> Result<(), SpecError> {
    let root = canonical(origin);
    let mut bundler = Bundler {
        root_dir: root.parent().map(Path::to_path_buf).unwrap_or_default(),
        root,
        files: HashMap::new(),
        keys: HashMap::new(),
        used_names: HashSet::new(),
        queue: VecDeque::new(),
    };
    let mut trail = Vec::new();
    bundler.walk(doc, origin, true, &mut trail)?;

    let mut hoisted = Map::new();
    while let Some(job) = bundler.queue.pop_front() {
        let mut fragment = bundler.fetch(&job)?;
        // Errors inside the fragment name their place in the file they came from.
        let mut trail: Vec<Cow<str>> = job
            .fragment
            .split('/')
            .skip(1)
            .map(|p| Cow::Owned(p.replace("~1", "/").replace("~0", "~")))
            .collect();
        bundler.walk(&mut fragment, &job.target, false, &mut trail)?;
        hoisted.insert(job.name, fragment);
    }
    if !hoisted.is_empty() {
        if let Value::Object(top) = doc {
            top.insert(EXTERNAL_KEY.to_string(), Value::Object(hoisted));
        }
    }
    Ok(())
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One external fragment waiting to be copied, with the reference that asked for it.
struct Job {
    name: String,
    target: PathBuf,
    fragment: String,
    referrer: PathBuf,
    pointer: String,
    reference: String,
}

struct Bundler {
    root: PathBuf,
    root_dir: PathBuf,
    files: HashMap<PathBuf, Value>,
    keys: HashMap<(PathBuf, String), String>,
    used_names: HashSet<String>,
    queue: VecDeque<Job>,
}

impl Bundler {
    /// Rewrites the refs of `value`, which was read from `file`.
    fn walk<'a>(
        &mut self,
        value: &'a mut Value,
        file: &Path,
        is_root: bool,
        trail: &mut Vec<Cow<'a, str>>,
    ) -> Result<(), SpecError> {
        walk::objects(value, trail, &mut |map, trail| {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let reference = reference.clone();
                if let Some(local) = self.rewrite(&reference, file, is_root, trail)? {
                    map.insert("$ref".to_string(), Value::String(local));
                }
            }
            Ok(())
        })
    }

    /// The local ref that replaces `reference`, or `None` to leave it as written.
    fn rewrite(
        &mut self,
        reference: &str,
        file: &Path,
        is_root: bool,
        trail: &[Cow<'_, str>],
    ) -> Result<Option<String>, SpecError> {
        let (file_part, fragment) = match reference.split_once('#') {
            Some((f, frag)) => (f, percent_decode(frag)),
            None => (reference, String::new()),
        };
        if file_part.is_empty() {
            if is_root {
                // Local ref of the root: keep, but decode `%7B` and friends so a plain
                // JSON-pointer lookup finds the target.
                return Ok(reference.contains('%').then(|| format!("#{fragment}")));
            }
            return self
                .hoist(file.to_path_buf(), fragment, file, reference, trail)
                .map(Some);
        }
        if file_part.contains("://") {
            return Err(SpecError::RemoteRef {
                file: file.to_path_buf(),
                pointer: pointer_of(trail),
                reference: reference.to_string(),
            });
        }
        let base = file.parent().unwrap_or(Path::new(""));
        let target = canonical(&base.join(percent_decode(file_part)));
        if target == self.root {
            return Ok(Some(format!("#{fragment}")));
        }
        self.hoist(target, fragment, file, reference, trail)
            .map(Some)
    }

    fn hoist(
        &mut self,
        target: PathBuf,
        fragment: String,
        referrer: &Path,
        reference: &str,
        trail: &[Cow<'_, str>],
    ) -> Result<String, SpecError> {
        let key = (target.clone(), fragment.clone());
        if let Some(name) = self.keys.get(&key) {
            return Ok(local_ref(name));
        }
        let name = self.fresh_name(&target, &fragment);
        self.keys.insert(key, name.clone());
        self.queue.push_back(Job {
            name: name.clone(),
            target,
            fragment,
            referrer: referrer.to_path_buf(),
            pointer: pointer_of(trail),
            reference: reference.to_string(),
        });
        Ok(local_ref(&name))
    }

    /// A readable, unique key: the target's path relative to the root plus its pointer.
    fn fresh_name(&mut self, target: &Path, fragment: &str) -> String {
        let relative = target.strip_prefix(&self.root_dir).unwrap_or(target);
        let raw = format!("{}{}", relative.display(), fragment);
        let mut base: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        base = base.trim_matches('_').to_string();
        let mut name = base.clone();
        let mut n = 2;
        while !self.used_names.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        name
    }

    fn fetch(&mut self, job: &Job) -> Result<Value, SpecError> {
        if !self.files.contains_key(&job.target) {
            let text =
                read::read_file(&job.target).map_err(|source| SpecError::RefTargetUnreadable {
                    file: job.referrer.clone(),
                    pointer: job.pointer.clone(),
                    reference: job.reference.clone(),
                    target: job.target.clone(),
                    source,
                })?;
            let parsed =
                read::parse_text(&text, &job.target).map_err(|e| SpecError::RefTargetInvalid {
                    file: job.referrer.clone(),
                    pointer: job.pointer.clone(),
                    reference: job.reference.clone(),
                    target: job.target.clone(),
                    source: Box::new(e),
                })?;
            self.files.insert(job.target.clone(), parsed);
        }
        let found = self
            .files
            .get(&job.target)
            .and_then(|doc| doc.pointer(&job.fragment));
        found.cloned().ok_or_else(|| SpecError::RefFragmentMissing {
            file: job.referrer.clone(),
            pointer: job.pointer.clone(),
            reference: job.reference.clone(),
            target: job.target.clone(),
            fragment: job.fragment.clone(),
        })
    }
}

fn local_ref(name: &str) -> String {
    format!("#/{EXTERNAL_KEY}/{name}")
}

/// `["paths", "/a/{id}", "get"]` → `/paths/~1a~1{id}/get`.
pub fn pointer_of(trail: &[Cow<'_, str>]) -> String {
    let mut out = String::new();
    for part in trail {
        out.push('/');
        out.push_str(&part.replace('~', "~0").replace('/', "~1"));
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Decodes `%XX` escapes (refs are URIs); malformed escapes are kept as written.
fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex_digit(bytes[i + 1]), hex_digit(bytes[i + 2])) {
                out.push(hi * 16 + lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes() {
        assert_eq!(percent_decode("/paths/~1a~1%7Bid%7D"), "/paths/~1a~1{id}");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }

    #[test]
    fn pointers_escape_slashes() {
        let trail = vec![Cow::Borrowed("paths"), Cow::Borrowed("/a/{id}")];
        assert_eq!(pointer_of(&trail), "/paths/~1a~1{id}");
    }
}
