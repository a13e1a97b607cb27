//! Fixture B, "marketplace": a seller back office in a house style unlike the demo portal's
//! and unlike fixture A's:
//! - a form login (`application/x-www-form-urlencoded`) answering a `sid` session cookie;
//! - creates are `PUT` on the collection (`PUT /products`, `PUT /users`);
//! - lists are bare JSON arrays; products are named by `product_id` (`"P-1001"`), users by
//!   `username`;
//! - the subject of a profile update is in its body (`PUT /profile {"username": …}`);
//! - a role is a free string (`"Seller"`, `"Manager"`; no enum in the description): an
//!   unknown value is a 400 naming the field.
//!
//! Sellers own products; a manager runs the platform. Another seller's product is a 404,
//! like a product that exists nowhere; another user's account is a 403 whether it exists
//! or not.

use super::common::{self, planted_flaws, serve, signed_in, Server, SignIn};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

planted_flaws! {
    /// `GET /products/{product_id}` serves any seller's product (BOLA): a seller reads
    /// another seller's product by `product_id`, learned from bare-array lists and from
    /// `PUT /products` creates.
    product_read_bola => ("GET /products/{product_id}", "id-swap"),
    /// `DELETE /products/{product_id}` checks the session, not the role: sellers delete
    /// products (function-level: only managers may). The matrix denies sellers the delete,
    /// so a seller's delete of a canary product (created with `PUT /products`) succeeds and
    /// its owner's read-back gets 404.
    product_delete_by_seller => ("DELETE /products/{product_id}", "escalation"),
    /// `PUT /profile` updates the user its body names, not the caller (subject in the body).
    /// It has no ID parameter: a seller's update naming another user changes that user's
    /// email, which the victim's own `GET /profile` read-back shows, a swap of the subject.
    profile_subject_in_body => ("PUT /profile", "id-swap"),
    /// `PUT /users/{username}/role` checks the session, not the role: any seller sets
    /// anyone's role. With a real role value (`"Manager"`, `"Seller"`: the only ones the API
    /// accepts, seen in `GET /users`; anything else is a 400 naming the field) a seller
    /// changes the role of a canary user (created by the manager with `PUT /users`).
    role_change_by_seller => ("PUT /users/{username}/role", "escalation"),
}

/// (username, password, env variable) of the scan's identities.
pub const USERS: &[(&str, &str, &str)] = &[
    ("alice", "alice-tandem-41", "MARKET_ALICE_PASSWORD"),
    ("bob", "bob-quartz-88", "MARKET_BOB_PASSWORD"),
    ("mia", "mia-lantern-15", "MARKET_MIA_PASSWORD"),
];

/// The roles the platform knows. The description gives `role` as a plain string.
const ROLES: &[&str] = &["Seller", "Manager"];

struct User {
    password: String,
    email: String,
    role: String,
}

struct Data {
    users: BTreeMap<String, User>,
    sessions: BTreeMap<String, String>,
    /// product_id → (seller, name, price_cents)
    products: BTreeMap<String, (String, String, i64)>,
    next_product: u32,
}

type AppState = common::Fixture<Flaws, Data>;

type Shared = Arc<AppState>;
type Call = common::Call<AppState>;

fn seed() -> Data {
    let mut users = BTreeMap::new();
    for (name, password, _) in USERS {
        let role = if *name == "mia" { "Manager" } else { "Seller" };
        users.insert(
            name.to_string(),
            User {
                password: password.to_string(),
                email: format!("{name}@market.example"),
                role: role.to_string(),
            },
        );
    }
    let mut products = BTreeMap::new();
    for (id, seller, name, price) in [
        ("P-1001", "alice", "Walnut desk organiser", 3900),
        ("P-1002", "alice", "Brass pen holder", 1450),
        ("P-2001", "bob", "Linen tote bag", 2200),
        ("P-2002", "bob", "Canvas apron", 2750),
    ] {
        products.insert(id.to_string(), (seller.into(), name.into(), price));
    }
    Data {
        users,
        sessions: BTreeMap::new(),
        products,
        next_product: 3001,
    }
}

pub async fn spawn(flaws: Flaws) -> Server {
    let state = AppState::new(flaws, seed());
    let app = Router::new()
        .route("/login", axum::routing::post(login))
        .route("/profile", get(read_profile).put(update_profile))
        .route("/users", get(list_users).put(create_user))
        .route("/users/{username}", get(read_user).delete(delete_user))
        .route("/users/{username}/role", put(set_role))
        .route("/products", get(list_products).put(create_product))
        .route(
            "/products/{product_id}",
            get(read_product).delete(delete_product),
        )
        .with_state(state);
    serve(app).await
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

impl SignIn for AppState {
    /// The caller's username and whether it is a manager.
    type Caller = (String, bool);

    fn caller(&self, headers: &HeaderMap) -> Result<(String, bool), Box<Response>> {
        let sid = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| c.trim().strip_prefix("sid="));
        let data = self.data();
        let user = sid
            .and_then(|sid| data.sessions.get(sid))
            .ok_or_else(|| Box::new(error(StatusCode::UNAUTHORIZED, "please log in")))?;
        let manager = data.users.get(user).is_some_and(|u| u.role == "Manager");
        Ok((user.clone(), manager))
    }
}

fn user_json(name: &str, user: &User) -> Value {
    json!({"username": name, "email": user.email, "role": user.role})
}

fn product_json(id: &str, (seller, name, price): &(String, String, i64)) -> Value {
    json!({"product_id": id, "seller": seller, "name": name, "price_cents": price})
}

/// The user `name` after `change`, or 404 when there is none (a read changes nothing).
fn change_user(data: &mut Data, name: &str, change: impl FnOnce(&mut User)) -> Response {
    match data.users.get_mut(name) {
        Some(user) => {
            change(user);
            Json(user_json(name, user)).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "no such user"),
    }
}

/// The entries of `items` the caller may see, as this house lists them: a bare JSON array.
fn bare_list<T>(
    items: &BTreeMap<String, T>,
    visible: impl Fn(&str, &T) -> bool,
    to_json: impl Fn(&str, &T) -> Value,
) -> Response {
    let kept: Vec<Value> = items
        .iter()
        .filter(|(key, item)| visible(key, item))
        .map(|(key, item)| to_json(key, item))
        .collect();
    Json(kept).into_response()
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

async fn login(State(state): State<Shared>, Form(form): Form<LoginForm>) -> Response {
    let mut data = state.data();
    let ok = data
        .users
        .get(&form.username)
        .is_some_and(|u| u.password == form.password);
    if !ok {
        return error(StatusCode::UNAUTHORIZED, "wrong username or password");
    }
    let sid = state.tokens.next("");
    data.sessions.insert(sid.clone(), form.username.clone());
    (
        [(
            header::SET_COOKIE,
            format!("sid={sid}; Path=/; HttpOnly; SameSite=Lax"),
        )],
        Json(json!({"status": "logged in", "username": form.username})),
    )
        .into_response()
}

async fn read_profile(Call { state, who }: Call) -> Response {
    let (me, _) = signed_in!(who);
    change_user(&mut state.data(), &me, |_| ())
}

#[derive(Deserialize)]
struct ProfileUpdate {
    username: String,
    email: String,
}

async fn update_profile(Call { state, who }: Call, Json(body): Json<ProfileUpdate>) -> Response {
    let (me, _) = signed_in!(who);
    if body.username != me && !state.flaws.profile_subject_in_body {
        return error(StatusCode::FORBIDDEN, "you can only edit your own profile");
    }
    let mut data = state.data();
    change_user(&mut data, &body.username, |user| user.email = body.email)
}

async fn list_users(Call { state, who }: Call) -> Response {
    let (me, manager) = signed_in!(who);
    bare_list(
        &state.data().users,
        |name, _| manager || name == me,
        user_json,
    )
}

#[derive(Deserialize)]
struct NewUser {
    username: String,
    password: String,
    email: String,
    role: String,
}

fn check_role(role: &str) -> Result<(), Box<Response>> {
    if ROLES.contains(&role) {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            &format!("unknown value for field `role`: expected one of {ROLES:?}"),
        )))
    }
}

async fn create_user(Call { state, who }: Call, Json(body): Json<NewUser>) -> Response {
    let (_, manager) = signed_in!(who);
    if !manager {
        return error(StatusCode::FORBIDDEN, "managers only");
    }
    if let Err(bad) = check_role(&body.role) {
        return *bad;
    }
    if body.username.is_empty() || body.password.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "username and password are required",
        );
    }
    let mut data = state.data();
    if data.users.contains_key(&body.username) {
        return error(StatusCode::CONFLICT, "username taken");
    }
    let user = User {
        password: body.password,
        email: body.email,
        role: body.role,
    };
    let answer = user_json(&body.username, &user);
    data.users.insert(body.username, user);
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn read_user(Call { state, who }: Call, Path(name): Path<String>) -> Response {
    let (me, manager) = signed_in!(who);
    if !manager && name != me {
        return error(StatusCode::FORBIDDEN, "not allowed");
    }
    change_user(&mut state.data(), &name, |_| ())
}

async fn delete_user(Call { state, who }: Call, Path(name): Path<String>) -> Response {
    let (me, manager) = signed_in!(who);
    if !manager {
        return error(StatusCode::FORBIDDEN, "managers only");
    }
    if name == me {
        return error(StatusCode::CONFLICT, "you cannot delete yourself");
    }
    let mut data = state.data();
    if data.users.remove(&name).is_none() {
        return error(StatusCode::NOT_FOUND, "no such user");
    }
    data.sessions.retain(|_, user| *user != name);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct RoleChange {
    role: String,
}

async fn set_role(
    Call { state, who }: Call,
    Path(name): Path<String>,
    Json(body): Json<RoleChange>,
) -> Response {
    let (_, manager) = signed_in!(who);
    if !manager && !state.flaws.role_change_by_seller {
        return error(StatusCode::FORBIDDEN, "managers only");
    }
    if let Err(bad) = check_role(&body.role) {
        return *bad;
    }
    let mut data = state.data();
    change_user(&mut data, &name, |user| user.role = body.role)
}

async fn list_products(Call { state, who }: Call) -> Response {
    let (me, manager) = signed_in!(who);
    bare_list(
        &state.data().products,
        |_, p| manager || p.0 == me,
        product_json,
    )
}

#[derive(Deserialize)]
struct NewProduct {
    name: String,
    price_cents: i64,
}

async fn create_product(Call { state, who }: Call, Json(body): Json<NewProduct>) -> Response {
    let (me, _) = signed_in!(who);
    if body.price_cents < 0 || body.name.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "name must not be empty and price_cents not negative",
        );
    }
    let mut data = state.data();
    let id = format!("P-{}", data.next_product);
    data.next_product += 1;
    let product = (me, body.name, body.price_cents);
    let answer = product_json(&id, &product);
    data.products.insert(id.clone(), product);
    (
        StatusCode::CREATED,
        [(header::LOCATION, format!("/products/{id}"))],
        Json(answer),
    )
        .into_response()
}

async fn read_product(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let (me, manager) = signed_in!(who);
    let data = state.data();
    match data.products.get(&id) {
        Some(p) if manager || p.0 == me || state.flaws.product_read_bola => {
            Json(product_json(&id, p)).into_response()
        }
        _ => error(StatusCode::NOT_FOUND, "no such product"),
    }
}

async fn delete_product(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let (_, manager) = signed_in!(who);
    if !manager && !state.flaws.product_delete_by_seller {
        return error(StatusCode::FORBIDDEN, "managers only");
    }
    let mut data = state.data();
    if data.products.remove(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "no such product");
    }
    StatusCode::NO_CONTENT.into_response()
}
