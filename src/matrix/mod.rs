//! The role matrix: a CSV a product owner edits (operations × roles → access), validated
//! against the spec and the engagement into a [`Policy`] the planner and the judge read.

mod draft;
pub mod observed;

pub use draft::draft;

use crate::spec::Api;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What a role may do with an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Never.
    Deny,
    /// Only objects this identity owns.
    Own,
    /// Objects of its own tenant.
    Tenant,
    /// Any object.
    Allow,
}

impl Access {
    pub fn parse(cell: &str) -> Option<Access> {
        match cell.trim().to_ascii_lowercase().as_str() {
            "deny" => Some(Access::Deny),
            "own" => Some(Access::Own),
            "tenant" => Some(Access::Tenant),
            "allow" => Some(Access::Allow),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Access::Deny => "deny",
            Access::Own => "own",
            Access::Tenant => "tenant",
            Access::Allow => "allow",
        }
    }
}

display_as_str!(Access);

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("cannot read role matrix {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Operation (index into `Api::operations`) × role → access. Roles are the matrix columns.
#[derive(Debug, Clone)]
pub struct Policy {
    pub roles: Vec<String>,
    /// operation → role (by position in `roles`) → access; looked up for every probe, so
    /// no allocation on the way.
    cells: BTreeMap<usize, Vec<Option<Access>>>,
    /// Operations with no row, kept when the engagement says to treat them as untested.
    pub untested: BTreeSet<usize>,
}

impl Policy {
    /// `None` when the operation has no row (untested) or the role no column.
    pub fn access(&self, op: usize, role: &str) -> Option<Access> {
        let column = self.roles.iter().position(|r| r == role)?;
        self.cells.get(&op)?.get(column).copied().flatten()
    }

    pub fn load(
        path: &Path,
        api: &Api,
        identity_roles: &[String],
        missing_rows_untested: bool,
    ) -> Result<Policy, MatrixError> {
        let text = std::fs::read_to_string(path).map_err(|source| MatrixError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path, api, identity_roles, missing_rows_untested)
    }

    pub fn parse(
        text: &str,
        path: &Path,
        api: &Api,
        identity_roles: &[String],
        missing_rows_untested: bool,
    ) -> Result<Policy, MatrixError> {
        let invalid = |line: usize, message: String| MatrixError::Invalid {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let headers = reader
            .headers()
            .map_err(|e| invalid(1, format!("cannot read the header row: {e}")))?
            .clone();
        if headers.len() < 2 {
            return Err(invalid(
                1,
                "the header row needs `operation` then one column per role, e.g. `operation,anonymous,client,admin`".into(),
            ));
        }
        let roles: Vec<String> = headers.iter().skip(1).map(|r| r.to_string()).collect();
        let mut seen_roles = BTreeSet::new();
        for role in &roles {
            if role.is_empty() || !seen_roles.insert(role.clone()) {
                return Err(invalid(
                    1,
                    format!("role column `{role}` is empty or repeated"),
                ));
            }
        }
        for role in identity_roles {
            if !roles.contains(role) {
                return Err(invalid(
                    1,
                    format!(
                        "the engagement has an identity with role `{role}` but the matrix has no such column{}; add a `{role}` column",
                        suggest(role, roles.iter().map(String::as_str))
                    ),
                ));
            }
        }
        let op_keys: Vec<String> = api.operations.iter().map(|o| o.key()).collect();
        let mut cells = BTreeMap::new();
        let mut row_of_op: BTreeMap<usize, usize> = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| p.line() as usize).unwrap_or(0);
                invalid(line, format!("malformed CSV: {e}"))
            })?;
            let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
            let Some(name) = record.get(0) else { continue };
            if name.is_empty() && record.iter().all(|c| c.is_empty()) {
                continue;
            }
            let op = resolve_operation(api, name).ok_or_else(|| {
                invalid(
                    line,
                    format!(
                        "operation `{name}` is not in the spec{}; write an operationId or `METHOD /path` as in the spec",
                        suggest(name, op_keys.iter().map(String::as_str).chain(api.operations.iter().filter_map(|o| o.operation_id.as_deref())))
                    ),
                )
            })?;
            if let Some(first) = row_of_op.insert(op, line) {
                return Err(invalid(
                    line,
                    format!(
                        "operation `{}` already has a row at line {first}",
                        op_keys[op]
                    ),
                ));
            }
            if record.len() != headers.len() {
                return Err(invalid(
                    line,
                    format!(
                        "row has {} cells but the header has {}",
                        record.len(),
                        headers.len()
                    ),
                ));
            }
            for (role, cell) in roles.iter().zip(record.iter().skip(1)) {
                let access = Access::parse(cell).ok_or_else(|| {
                    invalid(
                        line,
                        format!("cell `{cell}` for role `{role}` must be one of deny, own, tenant, allow"),
                    )
                })?;
                let row: &mut Vec<Option<Access>> =
                    cells.entry(op).or_insert_with(|| vec![None; roles.len()]);
                if let Some(column) = roles.iter().position(|r| r == role) {
                    row[column] = Some(access);
                }
            }
        }
        let mut untested = BTreeSet::new();
        for (i, key) in op_keys.iter().enumerate() {
            if !row_of_op.contains_key(&i) {
                if missing_rows_untested {
                    untested.insert(i);
                } else {
                    let line = text.lines().count() + 1;
                    return Err(invalid(
                        line,
                        format!(
                            "operation `{key}` has no row; add one (or set `missing_rows: untested` in the engagement to skip it)"
                        ),
                    ));
                }
            }
        }
        Ok(Policy {
            roles,
            cells,
            untested,
        })
    }
}

fn resolve_operation(api: &Api, name: &str) -> Option<usize> {
    let normalised = match name.split_once(' ') {
        Some((method, path)) => format!("{} {}", method.to_ascii_uppercase(), path.trim()),
        None => name.to_string(),
    };
    api.operations
        .iter()
        // Compared trimmed: spreadsheets and the CSV reader drop the trailing spaces that
        // some real specs leave in their paths (`/rooms/{roomId}/invite `).
        .position(|o| {
            o.key().trim() == normalised.trim() || o.operation_id.as_deref() == Some(name)
        })
}

/// ", did you mean `x`?" for the closest candidate within a small edit distance.
pub fn suggest<'a>(input: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    let best = candidates
        .map(|c| {
            (
                edit_distance(&input.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .min_by_key(|(d, _)| *d);
    match best {
        Some((d, c)) if d <= 3.max(input.len() / 4) => format!(" (did you mean `{c}`?)"),
        _ => String::new(),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_with_a_trailing_space_still_matches_its_row() {
        // Regression: matrix-org's `inviting.yaml` has `/rooms/{roomId}/invite ` (space).
        let api = crate::spec::test_api(
            "paths:\n  '/rooms/{roomId}/invite ':\n    post:\n      responses: {'200': {description: ok}}\n",
        );
        let roles = vec!["user".to_string()];
        let policy = Policy::parse(
            "operation,user\nPOST /rooms/{roomId}/invite ,own\n",
            Path::new("m.csv"),
            &api,
            &roles,
            false,
        )
        .expect("the trimmed row names the operation");
        assert_eq!(policy.access(0, "user"), Some(Access::Own));
    }

    #[test]
    fn edit_distance_suggests_near_names() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggest(
                "GET /invoice/{id}",
                ["GET /invoices/{id}", "POST /x"].into_iter()
            ),
            " (did you mean `GET /invoices/{id}`?)"
        );
        assert_eq!(suggest("zzzzzz", ["GET /invoices"].into_iter()), "");
    }
}
