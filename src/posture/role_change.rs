//! The opt-in session check after a role change (`posture: role_change:`): one identity's
//! role is lowered through the spec's own role-change operation, and the credential it
//! held before must then lose what the old role got (a read the matrix allows the old
//! role and denies the new one). The identity's own role is set back at the end and it
//! logs in again, whatever the outcome. At most six requests and one login per step.

use super::{Check, PostureBook, RoleChange, Spot};
use crate::engagement::Identity;
use crate::matrix::{Access, Policy};
use crate::request::{Credential, RequestSpec};
use crate::spec::{Api, Method};

/// A read of the spec (GET, no path parameter) the matrix allows `high` and denies `low`:
/// what tells the two roles apart.
pub fn telling_read(api: &Api, policy: &Policy, high: &str, low: &str) -> Option<RequestSpec> {
    api.operations
        .iter()
        .enumerate()
        .filter(|(_, o)| o.method == Method::Get && !o.path.contains('{'))
        .find(|(n, _)| {
            policy.access(*n, high).is_some_and(|a| a != Access::Deny)
                && policy.access(*n, low) == Some(Access::Deny)
        })
        .map(|(_, o)| super::bare_request(Method::Get, o.path.clone(), None))
}

/// Whether two path templates have the same shape: as many segments, each the same text
/// or a `{placeholder}` on either side (the engagement may name its placeholders after
/// the identity's attributes, the spec after its parameters).
pub fn same_shape(a: &str, b: &str) -> bool {
    let split = |p: &str| -> Vec<String> {
        p.trim_end_matches('/')
            .split('/')
            .map(str::to_string)
            .collect()
    };
    let template = |s: &str| s.starts_with('{') && s.ends_with('}');
    let (a, b) = (split(a), split(b));
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || template(x) || template(y))
}

/// The role change request setting `role` for `subject`, or why it cannot be built.
pub fn request_for(
    change: &RoleChange,
    api: &Api,
    subject: &Identity,
    role: &str,
) -> Result<RequestSpec, String> {
    let (method, path) = super::probe::parse_operation(&change.operation)
        .ok_or_else(|| format!("`{}` is not `METHOD /path`", change.operation))?;
    if !api
        .operations
        .iter()
        .any(|o| o.method == method && same_shape(&o.path, &path))
    {
        return Err(format!(
            "the spec has no operation `{}` (name the spec's role change, placeholders filled from the identity's attributes)",
            change.operation
        ));
    }
    // `{role}` is the role being set, not the identity's own (its attributes name it).
    let mut values = vec![("role".to_string(), role.to_string())];
    values.extend(
        subject
            .attributes
            .iter()
            .filter(|(k, v)| k.as_str() != "role" && (v.is_string() || v.is_number()))
            .map(|(k, v)| (k.clone(), crate::request::value_text(v))),
    );
    let path = crate::engagement::lifecycle::fill(&path, &values);
    let json = change
        .json
        .as_ref()
        .map(|j| crate::engagement::lifecycle::fill_json(j, &values));
    let body = json.as_ref().map(|j| j.to_string()).unwrap_or_default();
    if let Some(name) = crate::engagement::lifecycle::unfilled(&path)
        .or(crate::engagement::lifecycle::unfilled(&body))
    {
        return Err(format!(
            "it needs `{{{name}}}`, which identity `{}` does not define (add it to its `attributes`)",
            subject.name
        ));
    }
    Ok(super::bare_request(method, path, json))
}

/// Runs the check; why it could not judge (a step refused, no answer) and a role that
/// could not be set back are returned as a warning, since no row means the target passed.
pub async fn run(
    scene: &super::probe::Scene<'_>,
    change: &RoleChange,
    book: &mut PostureBook,
    sent: &mut usize,
) -> Option<String> {
    let executor = scene.executor;
    let by_name = |name: &str| scene.identities.iter().position(|i| i.name == name);
    let (Some(actor), Some(who)) = (by_name(&change.actor), by_name(&change.identity)) else {
        return Some("its `as:` or `identity:` names no identity".into());
    };
    let subject = &scene.identities[who];
    let own = subject.role.as_str();
    let (high, low) = change.roles(own);
    let Some(read) = telling_read(scene.api, scene.policy, high, low) else {
        return Some(format!(
            "no GET without path parameters is allowed to `{high}` and denied to `{low}` by the matrix, so nothing tells the roles apart"
        ));
    };
    let set = |role: &str| request_for(change, scene.api, subject, role);
    let (raise, lower, restore) = match (set(high), set(low), set(own)) {
        (Ok(r), Ok(l), Ok(o)) => (r, l, o),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Some(e),
    };
    // Sets a role as `actor`; the error names the answer.
    let send_as_actor = |request: RequestSpec| async move {
        let answer = executor
            .send_aside(&request, actor, Credential::Normal)
            .await;
        match answer.is_success() {
            true => Ok(()),
            false => Err(format!(
                "{} {} as `{}` answered {}",
                request.method.as_str(),
                request.path,
                change.actor,
                answer.status.unwrap_or(0)
            )),
        }
    };
    let verdict = async {
        if high != own {
            *sent += 1;
            send_as_actor(raise).await?;
            executor.relogin(who).await?;
        }
        *sent += 1;
        let control = executor.send_aside(&read, who, Credential::Normal).await;
        if !control.is_success() {
            return Err(format!(
                "`{}` as `{high}` could not read `GET {}` (answered {}), so its loss could not be told",
                subject.name,
                read.path,
                control.status.unwrap_or(0)
            ));
        }
        *sent += 2;
        send_as_actor(lower).await?;
        Ok(executor
            .send_aside(&read, who, Credential::Normal)
            .await
            .status)
    }
    .await;
    // Whatever happened: the identity's own role again (one of the two roles set differs
    // from it), and a credential issued for it.
    let mut warnings = Vec::new();
    *sent += 1;
    if let Err(e) = send_as_actor(restore).await {
        warnings.push(format!(
            "`{}`'s role could not be set back to `{own}` ({e}): set it by hand",
            subject.name
        ));
    }
    if let Err(e) = executor.relogin(who).await {
        warnings.push(format!("`{}` could not log in again: {e}", subject.name));
    }
    match verdict {
        Err(reason) => warnings.insert(0, reason),
        Ok(None) => warnings.insert(
            0,
            format!(
                "`GET {}` as the lowered `{}` got no answer",
                read.path, subject.name
            ),
        ),
        Ok(Some(status)) if (200..300).contains(&status) => {
            let operation = format!("GET {}", read.path);
            book.note(
                Spot::new(
                    Check::SessionAfterRoleChange,
                    format!(
                        "`{}` was lowered from `{high}` to `{low}` ({}), yet the credential it held as `{high}` still reads `{operation}` ({status}), which the matrix denies `{low}`: the old token keeps the old role (read the role server-side at every request, or revoke the user's tokens on a role change)",
                        subject.name, change.operation
                    ),
                ),
                &change.operation,
                &executor.url_for(&read),
                &subject.name,
            );
        }
        Ok(Some(_)) => {}
    }
    (!warnings.is_empty()).then(|| warnings.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shipped demo engagement, spec and matrix.
    fn demo() -> (crate::engagement::Engagement, Api, Policy) {
        let passwords = crate::demo::DemoOptions::random_passwords();
        crate::demo_scan::demo_inputs("http://127.0.0.1:9", &passwords).expect("demo inputs")
    }

    fn change(operation: &str) -> RoleChange {
        RoleChange {
            operation: operation.into(),
            actor: "root".into(),
            identity: "carol".into(),
            json: Some(serde_json::json!({"role": "{role}", "by": "{email}"})),
            from: Some("admin".into()),
            to: None,
        }
    }

    #[test]
    fn the_telling_read_is_allowed_the_old_role_and_denied_the_new() {
        let (_, api, policy) = demo();
        let read = telling_read(&api, &policy, "admin", "staff").expect("a read");
        assert_eq!(read.path, "/admin/users");
        // staff and client differ in scope (tenant, own), never allowed against denied.
        assert!(telling_read(&api, &policy, "staff", "client").is_none());
    }

    #[test]
    fn the_request_sets_the_role_named_not_the_identitys_own() {
        let (engagement, api, _) = demo();
        let carol = engagement
            .identities
            .iter()
            .find(|i| i.name == "carol")
            .expect("carol");
        let op = "PUT /admin/users/{user_id}/role";
        let request = request_for(&change(op), &api, carol, "admin").expect("request");
        assert_eq!(request.path, "/admin/users/3/role");
        assert_eq!(
            request.json,
            Some(serde_json::json!({"role": "admin", "by": "carol@acme.test"}))
        );
        let err = request_for(&change("PUT /users/{user_id}/role"), &api, carol, "admin");
        assert!(err.is_err_and(|e| e.contains("the spec has no operation")));
        let err = request_for(&change("PUT /admin/users/{team_id}/role"), &api, carol, "a");
        assert!(err.is_err_and(|e| e.contains("`{team_id}`") && e.contains("carol")));
    }

    #[test]
    fn templates_match_whatever_their_placeholders_are_named() {
        assert!(same_shape(
            "/admin/users/{userId}/role",
            "/admin/users/{user_id}/role"
        ));
        assert!(same_shape(
            "/admin/users/{userId}/role",
            "/admin/users/3/role"
        ));
        assert!(!same_shape(
            "/admin/users/{userId}/role",
            "/admin/users/{userId}"
        ));
        assert!(!same_shape(
            "/admin/users/{userId}/role",
            "/users/{userId}/role"
        ));
    }
}
