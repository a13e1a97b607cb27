//! Fixture A, "newsdesk": a syndication API for newsroom customers, in a house style unlike
//! the demo portal's:
//! - a version segment sits between the collection and the key: `/articles/v1/{article_title}`,
//!   `/accounts/v2/{account_name}`;
//! - objects are named by natural keys (an article's `title`, an account's `name`), never `id`;
//! - lists come wrapped under unusual keys: `{"Articles": [...]}`, `{"accounts": [...]}`;
//! - HTTP Basic on every route (`WWW-Authenticate` on 401).
//!
//! Every customer belongs to one account (the tenant; its `name` is the tenant's name) and
//! sees only its account's articles; `admin` sees everything. Another account's object is
//! answered 404, exactly like a title that exists nowhere.

use super::common::{serve, Server};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The planted flaws; each off is its secure twin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flaws {
    /// `GET /articles/v1/{article_title}` serves any account's article by title (BOLA).
    pub article_read_bola: bool,
    /// `GET /accounts/v2/{account_name}` serves any account by name (BOLA).
    pub account_read_bola: bool,
    /// `GET /accounts/v2` lists every account to customers, not only their own (list leak).
    pub accounts_list_leak: bool,
}

impl Flaws {
    pub fn all() -> Self {
        Flaws {
            article_read_bola: true,
            account_read_bola: true,
            accounts_list_leak: true,
        }
    }

    pub fn none() -> Self {
        Flaws::default()
    }

    /// Only the flaw named (a field name), every other one off.
    pub fn only(name: &str) -> Self {
        let mut flaws = Flaws::none();
        match name {
            "article_read_bola" => flaws.article_read_bola = true,
            "account_read_bola" => flaws.account_read_bola = true,
            "accounts_list_leak" => flaws.accounts_list_leak = true,
            other => panic!("no flaw `{other}` in this fixture"),
        }
        flaws
    }
}

/// Passwords the test hands to the engagement (`${NEWSDESK_*_PASSWORD}`).
pub const USERS: &[(&str, &str, &str)] = &[
    // (username, password, env variable)
    ("alice", "alice-horizon-7", "NEWSDESK_ALICE_PASSWORD"),
    ("bob", "bob-meridian-3", "NEWSDESK_BOB_PASSWORD"),
    ("dana", "dana-keystone-9", "NEWSDESK_DANA_PASSWORD"),
];

struct User {
    password: &'static str,
    admin: bool,
    /// The account (tenant) a customer belongs to.
    account: Option<&'static str>,
}

struct Data {
    users: BTreeMap<&'static str, User>,
    accounts: Vec<Value>,
    articles: Vec<Value>,
}

struct AppState {
    flaws: Flaws,
    data: Mutex<Data>,
}

type Shared = Arc<AppState>;

fn seed() -> Data {
    let mut users = BTreeMap::new();
    let password = |name: &str| {
        USERS
            .iter()
            .find(|u| u.0 == name)
            .map(|u| u.1)
            .unwrap_or("")
    };
    users.insert(
        "alice",
        User {
            password: password("alice"),
            admin: false,
            account: Some("north-trading"),
        },
    );
    users.insert(
        "bob",
        User {
            password: password("bob"),
            admin: false,
            account: Some("south-freight"),
        },
    );
    users.insert(
        "dana",
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
    let state = Arc::new(AppState {
        flaws,
        data: Mutex::new(seed()),
    });
    let app = Router::new()
        .route("/articles/v1", get(list_articles))
        .route("/articles/v1/{article_title}", get(read_article))
        .route("/accounts/v2", get(list_accounts))
        .route("/accounts/v2/{account_name}", get(read_account))
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

fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, Box<Response>> {
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
    let data = state.data.lock().expect("newsdesk state");
    match data.users.get(name) {
        Some(user) if user.password == password => Ok(if user.admin {
            None
        } else {
            user.account.map(str::to_string)
        }),
        _ => Err(Box::new(unauthorized())),
    }
}

fn visible(caller: &Caller, account: &Value) -> bool {
    caller.as_deref().is_none_or(|mine| account == mine)
}

async fn list_articles(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let who = match caller(&state, &headers) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    let data = state.data.lock().expect("newsdesk state");
    let articles: Vec<&Value> = data
        .articles
        .iter()
        .filter(|a| visible(&who, &a["account"]))
        .collect();
    Json(json!({ "Articles": articles })).into_response()
}

async fn read_article(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(title): Path<String>,
) -> Response {
    let who = match caller(&state, &headers) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    let data = state.data.lock().expect("newsdesk state");
    let found = data.articles.iter().find(|a| a["title"] == title.as_str());
    match found {
        Some(a) if state.flaws.article_read_bola || visible(&who, &a["account"]) => {
            Json(a.clone()).into_response()
        }
        _ => not_found(),
    }
}

async fn list_accounts(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let who = match caller(&state, &headers) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    let data = state.data.lock().expect("newsdesk state");
    let accounts: Vec<&Value> = data
        .accounts
        .iter()
        .filter(|a| state.flaws.accounts_list_leak || visible(&who, &a["name"]))
        .collect();
    Json(json!({ "accounts": accounts })).into_response()
}

async fn read_account(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let who = match caller(&state, &headers) {
        Ok(who) => who,
        Err(denied) => return *denied,
    };
    let data = state.data.lock().expect("newsdesk state");
    let found = data.accounts.iter().find(|a| a["name"] == name.as_str());
    match found {
        Some(a) if state.flaws.account_read_bola || visible(&who, &a["name"]) => {
            Json(a.clone()).into_response()
        }
        _ => not_found(),
    }
}
