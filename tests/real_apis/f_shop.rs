//! Fixture F, "shop": an Express + MongoDB API, the sixth house style:
//! - every answer wrapped as `{"success": true, "data": …}` (errors `{"success": false,
//!   "message": …}`);
//! - 24-hex `_id`s, the owner in a camelCase `userId`;
//! - a bearer token under `data.token` from `POST /api/auth/login`;
//! - a create whose body takes a required `items` array and an optional `userId`, the
//!   account it files the order for;
//! - users are read by their `_id` (`/api/users/{id}/profile`), learned from
//!   `GET /api/users/me` or from the orders' `userId`.

use super::common::{self, planted_flaws, serve, signed_in, Server, SignIn};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

planted_flaws! {
    /// `GET /api/orders/{id}` serves any user's order.
    order_read_any => ("GET /api/orders/{id}", "id-swap"),
    /// `POST /api/orders` files the order for the `userId` the body names, anyone's.
    order_created_for_anyone => ("POST /api/orders", "id-swap"),
    /// `GET /api/users/{id}/profile` serves any user's profile.
    profile_read_any => ("GET /api/users/{id}/profile", "id-swap"),
    /// `DELETE /api/orders/{id}` lets a user delete (the matrix keeps deletes for admins).
    order_delete_by_user => ("DELETE /api/orders/{id}", "escalation"),
}

/// (email, password, env variable) of the scan's identities.
pub const USERS: &[(&str, &str, &str)] = &[
    ("ann@shop.test", "ann-basket-5", "SHOP_ANN_PASSWORD"),
    ("bob@shop.test", "bob-cart-2", "SHOP_BOB_PASSWORD"),
    ("adm@shop.test", "adm-till-7", "SHOP_ADM_PASSWORD"),
];

#[derive(Clone)]
struct User {
    id: String,
    email: String,
    name: String,
    admin: bool,
}

struct Data {
    users: Vec<User>,
    tokens: common::Sessions,
    /// order `_id` → (userId, items, address)
    orders: BTreeMap<String, (String, Vec<String>, String)>,
    next: u64,
}

impl Data {
    /// A fresh ObjectId-shaped `_id` (deterministic: the same run gives the same IDs).
    fn object_id(&mut self, kind: u32) -> String {
        self.next += 1;
        format!("65a{kind:05x}{:016x}", self.next * 104_729)
    }
}

type AppState = common::Fixture<Flaws, Data>;
type Shared = Arc<AppState>;
type Call = common::Call<AppState>;

fn seed() -> Data {
    let mut data = Data {
        users: Vec::new(),
        tokens: common::Sessions::default(),
        orders: BTreeMap::new(),
        next: 0,
    };
    for (email, name, admin) in [
        ("ann@shop.test", "Ann", false),
        ("bob@shop.test", "Bob", false),
        ("adm@shop.test", "Admin", true),
    ] {
        let id = data.object_id(0x05e4);
        data.users.push(User {
            id,
            email: email.into(),
            name: name.into(),
            admin,
        });
    }
    for (n, buyer) in [0, 0, 1, 1].into_iter().enumerate() {
        let id = data.object_id(0x0d);
        let user = data.users[buyer].clone();
        let items = vec![format!("{}'s item {n}", user.name)];
        let address = format!("{} Street {n}", user.name);
        data.orders.insert(id, (user.id, items, address));
    }
    data
}

pub async fn spawn(flaws: Flaws) -> Server {
    let state = AppState::new(flaws, seed());
    let app = Router::new()
        .route("/api/auth/login", post(login))
        .route("/api/users/me", get(read_me))
        .route("/api/users/{id}/profile", get(read_profile))
        .route("/api/orders", get(list_orders).post(create_order))
        .route("/api/orders/{id}", get(read_order).delete(delete_order))
        .with_state(state);
    serve(app).await
}

fn ok(status: StatusCode, data: Value) -> Response {
    (status, Json(json!({"success": true, "data": data}))).into_response()
}

fn failed(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"success": false, "message": message}))).into_response()
}

impl SignIn for AppState {
    type Caller = User;

    fn caller(&self, headers: &HeaderMap) -> Result<User, Box<Response>> {
        let refused = || Box::new(failed(StatusCode::UNAUTHORIZED, "Not authorized, no token"));
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(refused)?;
        let data = self.data();
        data.tokens.user(token, &data.users).ok_or_else(refused)
    }
}

async fn login(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let (email, password) = (body["email"].as_str(), body["password"].as_str());
    let mut data = state.data();
    let signed = common::check_login(USERS, &data.users, |u| &u.email, email, password);
    let Some(index) = signed else {
        return failed(StatusCode::UNAUTHORIZED, "Invalid credentials");
    };
    let token = data.tokens.open(&state.tokens, "", index);
    let user = &data.users[index];
    ok(
        StatusCode::OK,
        json!({"token": token, "user": {"_id": user.id, "email": user.email}}),
    )
}

async fn read_me(Call { who, .. }: Call) -> Response {
    let user = signed_in!(who);
    let role = if user.admin { "admin" } else { "user" };
    ok(
        StatusCode::OK,
        json!({"_id": user.id, "email": user.email, "name": user.name, "role": role}),
    )
}

async fn read_profile(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    let Some(profile) = data.users.iter().find(|u| u.id == id) else {
        return failed(StatusCode::NOT_FOUND, "User not found");
    };
    if profile.id != user.id && !user.admin && !state.flaws.profile_read_any {
        return failed(StatusCode::NOT_FOUND, "User not found");
    }
    ok(
        StatusCode::OK,
        json!({"_id": profile.id, "email": profile.email, "name": profile.name}),
    )
}

fn order_json(id: &str, (user, items, address): &(String, Vec<String>, String)) -> Value {
    json!({"_id": id, "userId": user, "items": items, "address": address})
}

async fn list_orders(Call { state, who }: Call) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    let mine: Vec<Value> = data
        .orders
        .iter()
        .filter(|(_, o)| user.admin || o.0 == user.id)
        .map(|(id, o)| order_json(id, o))
        .collect();
    ok(StatusCode::OK, json!(mine))
}

async fn create_order(Call { state, who }: Call, Json(body): Json<Value>) -> Response {
    let user = signed_in!(who);
    let Some(items) = body["items"].as_array() else {
        return failed(StatusCode::BAD_REQUEST, "items required");
    };
    let items: Vec<String> = items
        .iter()
        .map(|i| i.as_str().unwrap_or_default().to_string())
        .collect();
    let address = body["address"].as_str().unwrap_or_default().to_string();
    let named = body["userId"].as_str().map(str::to_string);
    let buyer = match named {
        Some(other) if state.flaws.order_created_for_anyone => other,
        _ => user.id,
    };
    let mut data = state.data();
    let id = data.object_id(0x0d);
    let order = (buyer, items, address);
    let created = order_json(&id, &order);
    data.orders.insert(id, order);
    ok(StatusCode::CREATED, created)
}

/// The order `id` when the caller owns it or is an admin (or `anyone`).
fn visible_order(
    data: &Data,
    user: &User,
    id: &str,
    anyone: bool,
) -> Option<(String, Vec<String>, String)> {
    data.orders
        .get(id)
        .filter(|o| anyone || user.admin || o.0 == user.id)
        .cloned()
}

async fn read_order(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    match visible_order(&data, &user, &id, state.flaws.order_read_any) {
        Some(order) => ok(StatusCode::OK, order_json(&id, &order)),
        None => failed(StatusCode::NOT_FOUND, "Order not found"),
    }
}

async fn delete_order(Call { state, who }: Call, Path(id): Path<String>) -> Response {
    let user = signed_in!(who);
    let mut data = state.data();
    if visible_order(&data, &user, &id, false).is_none() {
        return failed(StatusCode::NOT_FOUND, "Order not found");
    }
    if !user.admin && !state.flaws.order_delete_by_user {
        return failed(StatusCode::FORBIDDEN, "Admin only");
    }
    data.orders.remove(&id);
    ok(StatusCode::OK, json!({"deleted": true}))
}
