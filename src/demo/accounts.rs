//! The portal's account state that can change while it runs: passwords, which bearer
//! tokens were revoked, and the routes that change them (own password change, password
//! reset of another user, the admin data reset) plus the profile read that shows them.
//!
//! These routes end sessions or wipe data, so their planted flaws are opt-in (see
//! `FlawInfo::default_on`): with them on, a scan loses identities mid-run, which is what
//! the scanner's lost-identity handling is tested against.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::data::{now_rfc3339, Store, User};
use super::jwt;
use super::server::{
    find, list, Admin, ApiError, ApiResult, AppState, Caller, JsonBody, PathId, Shared,
};

/// Tokens remembered per principal, so a password change can revoke them; older ones
/// fall out (a demo never issues this many to one user between two changes).
const TOKENS_KEPT: usize = 256;
/// The shortest password the portal accepts.
const MIN_PASSWORD_CHARS: usize = 8;

/// Passwords and revocations, behind one lock.
pub(crate) struct Accounts {
    inner: Mutex<Inner>,
}

struct Inner {
    /// The options' passwords, restored by `POST /admin/reset`.
    initial: BTreeMap<String, String>,
    passwords: BTreeMap<String, String>,
    issued: HashMap<u64, VecDeque<String>>,
    revoked: HashSet<String>,
    /// Per user id: how often the password changed and who changed it last.
    changes: BTreeMap<u64, (u64, u64)>,
    /// The reset audit survives the reset it records.
    resets: u64,
    last_reset_by: Option<u64>,
    last_reset_reason: Option<String>,
}

impl Accounts {
    pub(crate) fn new(passwords: &BTreeMap<String, String>) -> Self {
        Accounts {
            inner: Mutex::new(Inner {
                initial: passwords.clone(),
                passwords: passwords.clone(),
                issued: HashMap::new(),
                revoked: HashSet::new(),
                changes: BTreeMap::new(),
                resets: 0,
                last_reset_by: None,
                last_reset_reason: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `given` is the current password of `principal` (email or client id).
    pub(crate) fn password_ok(&self, principal: &str, given: &str, key: &[u8; 32]) -> bool {
        self.lock()
            .passwords
            .get(principal)
            .is_some_and(|expected| jwt::secrets_equal(given, expected, key))
    }

    /// Remembers a bearer token issued to `user`, so it can be revoked later. Tokens
    /// carry no nonce, so a login in the same second as a revoked one gets the very same
    /// token back: issuing it again is what makes it valid again.
    pub(crate) fn issued(&self, user: u64, token: &str) {
        let mut inner = self.lock();
        inner.revoked.remove(token);
        let tokens = inner.issued.entry(user).or_default();
        if tokens.len() >= TOKENS_KEPT {
            tokens.pop_front();
        }
        tokens.push_back(token.to_string());
    }

    /// The bearer tokens issued to `user` and not revoked yet.
    pub(crate) fn issued_to(&self, user: u64) -> Vec<String> {
        let inner = self.lock();
        inner
            .issued
            .get(&user)
            .map(|t| {
                t.iter()
                    .filter(|t| !inner.revoked.contains(*t))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Revokes one bearer token (a logout).
    pub(crate) fn revoke(&self, token: &str) {
        self.lock().revoked.insert(token.to_string());
    }

    pub(crate) fn is_revoked(&self, token: &str) -> bool {
        self.lock().revoked.contains(token)
    }

    /// Revokes the bearer tokens of `user` (every user when `None`).
    fn revoke_tokens(inner: &mut Inner, user: Option<u64>) {
        let ids: Vec<u64> = match user {
            Some(id) => vec![id],
            None => inner.issued.keys().copied().collect(),
        };
        for id in ids {
            if let Some(tokens) = inner.issued.remove(&id) {
                inner.revoked.extend(tokens);
            }
        }
    }
}

/// Ends every way `user` (every user when `None`) is signed in: bearer tokens, cookie
/// sessions and refresh tokens.
pub(super) fn end_sessions(state: &AppState, user: Option<u64>) {
    Accounts::revoke_tokens(&mut state.accounts.lock(), user);
    state
        .sessions()
        .retain(|_, s| user.is_some_and(|id| s.user_id != id));
    state.auth.revoke_refresh(user);
}

fn set_password(state: &AppState, target: &User, by: u64, new: &str) -> ApiResult<()> {
    if new.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "new_password must be at least 8 characters",
        ));
    }
    {
        let mut inner = state.accounts.lock();
        inner
            .passwords
            .insert(target.email.clone(), new.to_string());
        let entry = inner.changes.entry(target.id).or_insert((0, by));
        entry.0 += 1;
        entry.1 = by;
    }
    end_sessions(state, Some(target.id));
    Ok(())
}

/// Who may see or manage a user's account: the user, staff of its tenant, admins.
fn manages(caller: &User, user: &User) -> bool {
    match caller.role.as_str() {
        "admin" => true,
        "staff" => caller.tenant_id.is_some() && caller.tenant_id == user.tenant_id,
        _ => caller.id == user.id,
    }
}

/// User `id` if the caller manages it. Securely another's account is "not found", like
/// a missing one; `unchecked` (a planted flaw) skips the check.
fn managed_user(state: &AppState, caller: &User, id: u64, unchecked: bool) -> ApiResult<User> {
    let user = find(&state.store().users, id)?.clone();
    if unchecked || manages(caller, &user) {
        Ok(user)
    } else {
        Err(ApiError::not_found())
    }
}

fn account_json(state: &AppState, user: &User) -> serde_json::Value {
    let (changes, by) = state
        .accounts
        .lock()
        .changes
        .get(&user.id)
        .map_or((0, None), |&(n, by)| (n, Some(by)));
    json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "tenant_id": user.tenant_id,
        "password_changes": changes,
        "password_changed_by": by,
    })
}

/// `GET /accounts`: the sign-in accounts the caller manages (its own; staff: its
/// tenant's; admins: all).
pub(crate) async fn list_accounts(
    State(state): State<Shared>,
    Caller(caller): Caller,
) -> ApiResult {
    let users: Vec<User> = state
        .store()
        .users
        .iter()
        .filter(|u| manages(&caller, u))
        .cloned()
        .collect();
    Ok(list(
        users.iter().map(|u| account_json(&state, u)).collect(),
    ))
}

/// `GET /accounts/{accountId}`: one account with its password audit (own, tenant staff,
/// admin; others get "not found").
pub(crate) async fn get_account(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
) -> ApiResult {
    let user = managed_user(&state, &caller, id, false)?;
    Ok(Json(account_json(&state, &user)).into_response())
}

#[derive(Deserialize)]
pub(crate) struct OwnPasswordBody {
    current_password: String,
    new_password: String,
}

/// `POST /me/password`: the caller changes its own password; every session and token
/// it holds ends (no flaw in any mode).
pub(crate) async fn change_own_password(
    State(state): State<Shared>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<OwnPasswordBody>,
) -> ApiResult {
    if !state
        .accounts
        .password_ok(&caller.email, &body.current_password, &state.secret)
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "current_password is wrong",
        ));
    }
    set_password(&state, &caller, caller.id, &body.new_password)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub(crate) struct ResetPasswordBody {
    new_password: String,
}

/// `PUT /accounts/{accountId}/password`: sets a user's password (the user itself, staff of its
/// tenant, admins) and ends the user's sessions. FLAW password-reset-bola: any
/// authenticated caller resets anyone's password. Securely, a user the caller may not
/// manage is "not found".
pub(crate) async fn reset_password(
    State(state): State<Shared>,
    Caller(caller): Caller,
    PathId(id): PathId,
    body: Result<Json<ResetPasswordBody>, JsonRejection>,
) -> ApiResult {
    let bola = state.options.has("password-reset-bola");
    let user = managed_user(&state, &caller, id, bola)?;
    let Json(body) = body?;
    set_password(&state, &user, caller.id, &body.new_password)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub(crate) struct ResetBody {
    reason: String,
}

fn reset_audit(inner: &Inner) -> serde_json::Value {
    json!({
        "resets": inner.resets,
        "last_reset_by": inner.last_reset_by,
        "last_reset_reason": inner.last_reset_reason,
    })
}

/// Admins only (staff too under FLAW admin-reset-bfla, whose role check lets staff in).
fn may_reset(state: &AppState, caller: &User) -> bool {
    caller.role == "admin" || (state.options.has("admin-reset-bfla") && caller.role == "staff")
}

/// `GET /admin/reset`: when the portal was last reset, by whom and why (admins only).
pub(crate) async fn reset_status(State(state): State<Shared>, _: Admin) -> ApiResult {
    let audit = reset_audit(&state.accounts.lock());
    Ok(Json(audit).into_response())
}

/// `POST /admin/reset`: restores the seed data and every initial password, and ends
/// every session. Admins only; FLAW admin-reset-bfla lets staff do it too.
pub(crate) async fn reset_portal(
    State(state): State<Shared>,
    Caller(caller): Caller,
    body: Result<Json<ResetBody>, JsonRejection>,
) -> ApiResult {
    if !may_reset(&state, &caller) {
        return Err(ApiError::forbidden());
    }
    let Json(body) = body?;
    let reason = body.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason must be 1 to 200 characters",
        ));
    }
    *state.store() = Store::seed();
    let audit = {
        let mut inner = state.accounts.lock();
        inner.passwords = inner.initial.clone();
        inner.changes.clear();
        inner.resets += 1;
        inner.last_reset_by = Some(caller.id);
        inner.last_reset_reason = Some(reason.to_string());
        reset_audit(&inner)
    };
    end_sessions(&state, None);
    let mut audit = audit;
    audit["reset_at"] = json!(now_rfc3339());
    Ok(Json(audit).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_covers_issued_tokens_only() {
        let accounts = Accounts::new(&BTreeMap::new());
        accounts.issued(1, "a");
        accounts.issued(2, "b");
        Accounts::revoke_tokens(&mut accounts.lock(), Some(1));
        assert!(accounts.is_revoked("a"));
        assert!(!accounts.is_revoked("b"));
        Accounts::revoke_tokens(&mut accounts.lock(), None);
        assert!(accounts.is_revoked("b"));
    }
}
