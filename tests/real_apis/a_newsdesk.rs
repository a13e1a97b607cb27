//! Fixture A, "newsdesk": a syndication API for newsroom customers, in a house style unlike
//! the demo portal's:
//! - a version segment sits between the collection and the key: `/articles/v1/{article_title}`,
//!   `/accounts/v2/{account_name}`;
//! - objects are named by natural keys (an article's `title`, an account's `name`), never `id`;
//! - lists come wrapped under unusual keys: `{"Articles": [...]}`, `{"accounts": [...]}`;
//! - HTTP Basic on every route (`WWW-Authenticate` on 401);
//! - a sign-up (`POST /users/v1/register`) that answers only `{"status": "success", …}`,
//!   so what the new account became shows only once it signs in, and an admin-only
//!   `GET /admin/v1/audit`.
//!
//! Every customer belongs to one account (the tenant; its `name` is the tenant's name) and
//! sees only its account's articles; `admin` sees everything. Another account's object is
//! answered 404, exactly like a title that exists nowhere.

use super::common::{self, planted_flaws, serve, signed_in, Server, SignIn};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

planted_flaws! {
    /// `GET /articles/v1/{article_title}` serves any account's article by title (BOLA):
    /// a customer reads another account's article by its title (a natural key behind a
    /// version segment), an object read across tenants.
    article_read_bola => ("GET /articles/v1/{article_title}", "id-swap"),
    /// `GET /accounts/v2/{account_name}` serves any account by name (BOLA): a customer
    /// reads another account by its name.
    account_read_bola => ("GET /accounts/v2/{account_name}", "id-swap"),
    /// `GET /accounts/v2` lists every account to customers, not only their own (list leak):
    /// the `{"accounts": [...]}` list a customer gets answers other tenants.
    accounts_list_leak => ("GET /accounts/v2", "list-leak"),
    /// `POST /users/v1/register` honours `"admin": true` (mass assignment at sign-up). Its
    /// answer says only "success"; the new account, signed in with Basic auth, reads the
    /// admin-only audit trail that a customer is refused.
    register_admin_flag => ("POST /users/v1/register", "mass-assignment"),
}

/// Passwords the test hands to the engagement (`${NEWSDESK_*_PASSWORD}`).
pub const USERS: &[(&str, &str, &str)] = &[
    // (username, password, env variable)
    ("alice", "alice-horizon-7", "NEWSDESK_ALICE_PASSWORD"),
    ("bob", "bob-meridian-3", "NEWSDESK_BOB_PASSWORD"),
    ("dana", "dana-keystone-9", "NEWSDESK_DANA_PASSWORD"),
];

struct User {
    password: String,
    admin: bool,
    /// The account (tenant) a customer belongs to.
    account: Option<String>,
}

struct Data {
    users: BTreeMap<String, User>,
    accounts: Vec<Value>,
    articles: Vec<Value>,
}

type AppState = common::Fixture<Flaws, Data>;

type Shared = Arc<AppState>;
type Call = common::Call<AppState>;

fn seed() -> Data {
    let mut users = BTreeMap::new();
    let password = |name: &str| {
        common::password_of(USERS, name)
            .unwrap_or_default()
            .to_string()
    };
    users.insert(
        "alice".to_string(),
        User {
            password: password("alice"),
            admin: false,
            account: Some("north-trading".into()),
        },
    );
    users.insert(
        "bob".to_string(),
        User {
            password: password("bob"),
            admin: false,
            account: Some("south-freight".into()),
        },
    );
    users.insert(
        "dana".to_string(),
        User {
            password: password("dana"),
            admin: true,
            account: None,
        },
    );
    let accounts = vec![
        json!({"name": "north-trading", "display_name": "North Trading Co.", "plan": "gold", "seats": 12, "billing_email": "billing@north-trading.example"}),
        json!({"name": "south-freight", "display_name": "South Freight Ltd", "plan": "silver", "seats": 4, "billing_email": "ap@south-freight.example"}),
    ];
    let article = |title: &str, account: &str, byline: &str, body: &str, words: u32| json!({"title": title, "account": account, "byline": byline, "body": body, "word_count": words, "embargoed": true});
    let articles = vec![
        article(
            "Harbour Expansion Plans",
            "north-trading",
            "A. Lindqvist",
            "The port authority will double berth capacity by 2028.",
            840,
        ),
        article(
            "north-q3-results",
            "north-trading",
            "A. Lindqvist",
            "Revenue rose 14% on container volumes.",
            512,
        ),
        article(
            "Rail Strike Impact",
            "south-freight",
            "B. Okafor",
            "Freight delays of up to nine days expected.",
            655,
        ),
        article(
            "south-q3-results",
            "south-freight",
            "B. Okafor",
            "Margins held despite fuel costs.",
            430,
        ),
    ];
    Data {
        users,
        accounts,
        articles,
    }
}

pub async fn spawn(flaws: Flaws) -> Server {
    let state = AppState::new(flaws, seed());
    let app = Router::new()
        .route("/articles/v1", get(list_articles))
        .route("/articles/v1/{article_title}", get(read_article))
        .route("/accounts/v2", get(list_accounts))
        .route("/accounts/v2/{account_name}", get(read_account))
        .route("/users/v1/register", post(register))
        .route("/admin/v1/audit", get(audit))
        .with_state(state);
    serve(app).await
}

/// Who is calling: `Some(account)` for a customer, `None` for an admin.
type Caller = Option<String>;

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Basic realm=\"newsdesk\"")],
        Json(json!({"message": "Authentication required"})),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"message": "Not Found"}))).into_response()
}

impl SignIn for AppState {
    type Caller = Caller;

    fn caller(&self, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
        let encoded = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .ok_or_else(|| Box::new(unauthorized()))?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| Box::new(unauthorized()))?;
        let (name, password) = decoded
            .split_once(':')
            .ok_or_else(|| Box::new(unauthorized()))?;
        let data = self.data();
        match data.users.get(name) {
            Some(user) if user.password == password => Ok(if user.admin {
                None
            } else {
                // A customer without an account yet sees no account's data.
                Some(user.account.clone().unwrap_or_default())
            }),
            _ => Err(Box::new(unauthorized())),
        }
    }
}

fn visible(caller: &Caller, account: &Value) -> bool {
    caller.as_deref().is_none_or(|mine| account == mine)
}

/// Answers a signed-in caller with `answer(caller, data)`; anyone else gets the 401.
fn for_caller(
    state: &AppState,
    who: Result<Caller, Box<Response>>,
    answer: impl FnOnce(&Caller, &Data) -> Response,
) -> Response {
    let who = signed_in!(who);
    answer(&who, &state.data())
}

/// `{wrapper: [the items kept]}`: how this house wraps its lists.
fn wrapped_list(wrapper: &str, items: &[Value], keep: impl Fn(&Value) -> bool) -> Response {
    let kept: Vec<&Value> = items.iter().filter(|item| keep(item)).collect();
    Json(json!({ wrapper: kept })).into_response()
}

/// The item whose `key` field is `wanted`, when `shown`; otherwise 404, exactly like a
/// key that exists nowhere.
fn one_by_key(
    items: &[Value],
    key: &str,
    wanted: &str,
    shown: impl Fn(&Value) -> bool,
) -> Response {
    match items.iter().find(|item| item[key] == wanted) {
        Some(item) if shown(item) => Json(item.clone()).into_response(),
        _ => not_found(),
    }
}

async fn list_articles(Call { state, who }: Call) -> Response {
    for_caller(&state, who, |who, data| {
        wrapped_list("Articles", &data.articles, |a| visible(who, &a["account"]))
    })
}

async fn read_article(Call { state, who }: Call, Path(title): Path<String>) -> Response {
    for_caller(&state, who, |who, data| {
        one_by_key(&data.articles, "title", &title, |a| {
            state.flaws.article_read_bola || visible(who, &a["account"])
        })
    })
}

async fn list_accounts(Call { state, who }: Call) -> Response {
    for_caller(&state, who, |who, data| {
        wrapped_list("accounts", &data.accounts, |a| {
            state.flaws.accounts_list_leak || visible(who, &a["name"])
        })
    })
}

async fn read_account(Call { state, who }: Call, Path(name): Path<String>) -> Response {
    for_caller(&state, who, |who, data| {
        one_by_key(&data.accounts, "name", &name, |a| {
            state.flaws.account_read_bola || visible(who, &a["name"])
        })
    })
}

/// `POST /users/v1/register {"username", "password", "email"}`: a new customer with no
/// account yet. The answer says only that it worked.
async fn register(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let (Some(name), Some(password)) = (body["username"].as_str(), body["password"].as_str())
    else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"status": "fail", "message": "username and password are required"})),
        )
            .into_response();
    };
    let mut data = state.data();
    if data.users.contains_key(name) {
        return (
            StatusCode::CONFLICT,
            Json(json!({"status": "fail", "message": "User already exists"})),
        )
            .into_response();
    }
    let admin = state.flaws.register_admin_flag && body["admin"] == json!(true);
    data.users.insert(
        name.to_string(),
        User {
            password: password.to_string(),
            admin,
            account: None,
        },
    );
    (
        StatusCode::CREATED,
        Json(json!({"status": "success", "message": "Successfully registered. Sign in with Basic auth."})),
    )
        .into_response()
}

/// `GET /admin/v1/audit`: admins only.
async fn audit(Call { who, .. }: Call) -> Response {
    match who {
        Err(denied) => *denied,
        Ok(Some(_)) => (
            StatusCode::FORBIDDEN,
            Json(json!({"message": "Admins only"})),
        )
            .into_response(),
        Ok(None) => Json(json!({"entries": [{"at": "2026-11-02T09:14:00Z", "event": "plan.changed", "account": "north-trading"}]})).into_response(),
    }
}
