//! The account a sign-up probe creates, as an identity the scan can log in with: the
//! login recipe of an identity that signs in the same way, with the sign-up's own
//! username, email and password in place of that identity's. Logged in, the account
//! shows what it became: its self-read (`GET /me`) and the reads its role is denied.
//! A sign-up answer rarely describes the account (`{"status": "success"}`), so this is
//! how a privileged field honoured at sign-up is proven.

use super::PlanInput;
use crate::engagement::{Auth, Identity, Secret, StepBody};
use crate::matrix::Access;
use crate::request::RequestSpec;
use crate::spec::Method;
use serde_json::{Map, Value};

/// Reads at most this many denied operations as the new account: enough to show a
/// gained privilege, few enough to stay a handful of requests.
const DENIED_READS: usize = 3;

/// How the account a sign-up makes is logged in and checked.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Logs in as the new account (no attributes, the template's role).
    pub identity: Identity,
    /// The identity whose login recipe was borrowed: the role a new account is expected
    /// to have, and the caller that shows the denied reads are really denied.
    pub template: usize,
    /// The API's self-read (`GET /me`), when it has one.
    pub self_read: Option<(usize, RequestSpec)>,
    /// Reads without an object that the template's role is denied and another role is
    /// allowed: a 2xx for the new account there is a privilege the sign-up gave it.
    pub denied_reads: Vec<(usize, RequestSpec)>,
}

/// The new account of a sign-up whose body is `signup`, when an identity logs in with
/// fields the sign-up also sets (a username or email, and a password).
pub fn new_account(input: &PlanInput<'_>, signup: &Map<String, Value>) -> Option<NewAccount> {
    let (template, auth) = input
        .identities
        .iter()
        .enumerate()
        .filter(|(_, i)| !i.is_anonymous())
        .find_map(|(n, i)| Some((n, login_as(&i.auth, signup)?)))?;
    let role = input.identities[template].role.clone();
    let self_read = crate::discover::facts::self_read_operations(input.api)
        .into_iter()
        .next()
        .and_then(|op| Some((op, crate::request::build_request(input.api, op, None, "")?)));
    let denied_reads = denied_reads(input, &role);
    Some(NewAccount {
        identity: Identity {
            name: "the signed-up account".into(),
            tenant: None,
            role,
            attributes: Default::default(),
            auth,
        },
        template,
        self_read,
        denied_reads,
    })
}

/// Reads without an object that `role` is denied and another role is allowed: a 2xx
/// there for a caller of `role` is a privilege it gained (by a sign-up or self-update).
pub(super) fn denied_reads(input: &PlanInput<'_>, role: &str) -> Vec<(usize, RequestSpec)> {
    (0..input.api.operations.len())
        .filter(|&op| {
            let operation = &input.api.operations[op];
            operation.method == Method::Get
                && operation.path_params().next().is_none()
                && input.sendable(op)
                && input.policy.access(op, role) == Some(Access::Deny)
                && input.identities.iter().any(|i| {
                    !i.is_anonymous()
                        && input
                            .policy
                            .access(op, &i.role)
                            .is_some_and(|a| a != Access::Deny)
                })
        })
        .filter_map(|op| Some((op, crate::request::build_request(input.api, op, None, "")?)))
        .take(DENIED_READS)
        .collect()
}

/// `auth` with the sign-up's credentials in place of its own, when every credential
/// field of the login has a counterpart in the sign-up body.
fn login_as(auth: &Auth, signup: &Map<String, Value>) -> Option<Auth> {
    let text = |key: &str| signup.get(key).and_then(Value::as_str).map(str::to_string);
    let find = |kind: fn(&str) -> bool| {
        signup
            .iter()
            .find(|(k, v)| kind(k) && v.is_string())
            .and_then(|(k, _)| text(k))
    };
    let password = find(is_password)?;
    let login_name = find(is_login_name).or_else(|| find(is_email))?;
    // The sign-up value for a login field of this name: the same name, else the same kind.
    let counterpart = |key: &str| -> Option<Option<String>> {
        if is_password(key) {
            return Some(Some(password.clone()));
        }
        if let Some(same) = text(key) {
            return Some(Some(same));
        }
        if is_email(key) {
            return Some(Some(find(is_email).unwrap_or_else(|| login_name.clone())));
        }
        if is_login_name(key) {
            return Some(Some(login_name.clone()));
        }
        // Not a credential field (a client ID, `remember: true`): kept as it is.
        Some(None)
    };
    match auth {
        Auth::Basic { .. } => Some(Auth::Basic {
            username: login_name.clone(),
            password: Secret::new(password.clone()),
        }),
        Auth::Login(flow) => {
            let mut flow = flow.clone();
            let mut replaced_password = false;
            for step in &mut flow.steps {
                match &mut step.body {
                    Some(StepBody::Json(body)) => {
                        let Ok(Value::Object(mut fields)) =
                            serde_json::from_str::<Value>(body.expose())
                        else {
                            continue;
                        };
                        for (key, value) in fields.iter_mut() {
                            if let Some(Some(new)) = counterpart(key) {
                                replaced_password |= is_password(key);
                                *value = Value::String(new);
                            }
                        }
                        *body = Secret::new(Value::Object(fields).to_string());
                    }
                    Some(StepBody::Form(fields)) => {
                        for (key, value) in fields.iter_mut() {
                            if let Some(Some(new)) = counterpart(key) {
                                replaced_password |= is_password(key);
                                *value = Secret::new(new);
                            }
                        }
                    }
                    None => {}
                }
            }
            // A login that sends no password of ours would still be the template's.
            replaced_password.then_some(Auth::Login(flow))
        }
        _ => None,
    }
}

fn is_password(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.contains("password") || lower == "passwd" || lower == "pass" || lower == "pwd"
}

fn is_email(key: &str) -> bool {
    key.to_ascii_lowercase().contains("email")
}

fn is_login_name(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "username" | "user_name" | "login" | "handle" | "user"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engagement::{LoginFlow, LoginStep, SessionUse};
    use serde_json::json;

    fn signup() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "username": "rg-new", "email": "rg-new@example.test",
            "password": "Throwaway-1!", "admin": true
        }) else {
            unreachable!()
        };
        map
    }

    fn login(body: StepBody) -> Auth {
        Auth::Login(LoginFlow {
            steps: vec![LoginStep {
                method: reqwest::Method::POST,
                path: "/login".into(),
                headers: Vec::new(),
                body: Some(body),
                captures: Vec::new(),
            }],
            session: SessionUse::Header {
                name: "Authorization".into(),
                template: "Bearer {token}".into(),
            },
            csrf: None,
        })
    }

    #[test]
    fn a_json_login_takes_the_signup_credentials_and_keeps_other_fields() {
        let template = login(StepBody::Json(Secret::new(
            json!({"email": "alice@x.test", "password": "alice-secret", "remember": true})
                .to_string(),
        )));
        let Some(Auth::Login(flow)) = login_as(&template, &signup()) else {
            panic!("a JSON login with email and password is reusable")
        };
        let Some(StepBody::Json(body)) = &flow.steps[0].body else {
            panic!("still a JSON body")
        };
        let body: Value = serde_json::from_str(body.expose()).expect("json");
        assert_eq!(
            body,
            json!({"email": "rg-new@example.test", "password": "Throwaway-1!", "remember": true})
        );
    }

    #[test]
    fn basic_and_form_logins_are_rewritten_and_a_login_without_password_is_not() {
        let basic = Auth::Basic {
            username: "alice".into(),
            password: Secret::new("alice-secret"),
        };
        match login_as(&basic, &signup()) {
            Some(Auth::Basic { username, password }) => {
                assert_eq!(username, "rg-new");
                assert_eq!(password.expose(), "Throwaway-1!");
            }
            _ => panic!("Basic is reusable"),
        }
        let form = login(StepBody::Form(vec![
            ("user".into(), Secret::new("alice")),
            ("pass".into(), Secret::new("alice-secret")),
        ]));
        let Some(Auth::Login(flow)) = login_as(&form, &signup()) else {
            panic!("a form login is reusable")
        };
        let Some(StepBody::Form(fields)) = &flow.steps[0].body else {
            panic!("still a form")
        };
        let values: Vec<&str> = fields.iter().map(|(_, v)| v.expose()).collect();
        assert_eq!(values, ["rg-new", "Throwaway-1!"]);
        let key_only = login(StepBody::Json(Secret::new(
            json!({"api_key": "k"}).to_string(),
        )));
        assert!(login_as(&key_only, &signup()).is_none());
        let header = Auth::Header {
            name: "Authorization".into(),
            value: Secret::new("Bearer t"),
        };
        assert!(login_as(&header, &signup()).is_none());
    }
}
