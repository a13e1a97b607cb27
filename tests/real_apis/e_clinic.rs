//! Fixture E, "clinic": a Django REST framework API, the fifth house style:
//! - trailing slashes on every path (`/api/patients/{id}/`);
//! - `Authorization: Token <key>` from `POST /api/auth/login/` answering `{"key": …}`;
//! - pages as `{"count", "next", "previous", "results"}`, `next` an absolute URL;
//! - foreign keys named by their resource, not `<resource>_id`: appointments are listed
//!   with a required filter `?patient=12`, and a prescription's body says `"patient": 12`;
//! - a filter that matches nothing answers an empty page, not an error;
//! - clinics are the tenants; roles doctor and nurse; errors as `{"detail": …}`.

use super::common::{self, planted_flaws, serve, signed_in, Server, SignIn};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

planted_flaws! {
    /// `GET /api/patients/{id}/` serves another clinic's patient.
    patient_read_cross_clinic => ("GET /api/patients/{id}/", "id-swap"),
    /// `GET /api/appointments/?patient=…` lists another clinic's patient's appointments.
    appointments_by_foreign_patient => ("GET /api/appointments/", "id-swap"),
    /// `GET /api/appointments/{id}/` serves another clinic's appointment; its IDs come only
    /// from the filtered listing, read once per patient.
    appointment_read_cross_clinic => ("GET /api/appointments/{id}/", "id-swap"),
    /// `DELETE /api/prescriptions/{id}/` lets a nurse delete (the matrix gives nurses no
    /// delete); the prescriptions exist only as rolegrid creates them.
    prescription_delete_by_nurse => ("DELETE /api/prescriptions/{id}/", "escalation"),
}

/// (username, password, env variable) of the scan's identities.
pub const USERS: &[(&str, &str, &str)] = &[
    ("ann", "ann-stethoscope-3", "CLINIC_ANN_PASSWORD"),
    ("nia", "nia-bandage-8", "CLINIC_NIA_PASSWORD"),
    ("ben", "ben-scalpel-1", "CLINIC_BEN_PASSWORD"),
];

#[derive(Clone)]
struct User {
    id: u64,
    username: String,
    clinic: u64,
    role: String,
}

struct Data {
    users: Vec<User>,
    tokens: common::Sessions,
    /// patient ID → (name, clinic)
    patients: BTreeMap<u64, (String, u64)>,
    /// appointment ID → (patient ID, reason)
    appointments: BTreeMap<u64, (u64, String)>,
    /// prescription ID → (patient ID, drug)
    prescriptions: BTreeMap<u64, (u64, String)>,
    next_prescription: u64,
}

type AppState = common::Fixture<Flaws, Data>;
type Shared = Arc<AppState>;
type Call = common::Call<AppState>;

fn seed() -> Data {
    let user = |id: u64, username: &str, clinic: u64, role: &str| User {
        id,
        username: username.into(),
        clinic,
        role: role.into(),
    };
    let mut data = Data {
        users: vec![
            user(3, "ann", 1, "doctor"),
            user(4, "nia", 1, "nurse"),
            user(7, "ben", 2, "doctor"),
        ],
        tokens: common::Sessions::default(),
        patients: BTreeMap::new(),
        appointments: BTreeMap::new(),
        prescriptions: BTreeMap::new(),
        next_prescription: 900,
    };
    let seeded = [
        ("Alice Smith", 1),
        ("Bob Jones", 1),
        ("Eve Stone", 1),
        ("Carl Rich", 2),
        ("Dana Poe", 2),
    ];
    for (n, (name, clinic)) in seeded.into_iter().enumerate() {
        let patient = 100 + n as u64;
        data.patients.insert(patient, (name.into(), clinic));
        let reason = format!("{name}: follow-up on the biopsy");
        data.appointments.insert(500 + n as u64, (patient, reason));
    }
    data
}

pub async fn spawn(flaws: Flaws) -> Server {
    let state = AppState::new(flaws, seed());
    let app = Router::new()
        .route("/api/auth/login/", post(login))
        .route("/api/users/me/", get(read_me))
        .route("/api/patients/", get(list_patients))
        .route("/api/patients/{id}/", get(read_patient))
        .route("/api/appointments/", get(list_appointments))
        .route("/api/appointments/{id}/", get(read_appointment))
        .route("/api/prescriptions/", post(prescribe))
        .route(
            "/api/prescriptions/{id}/",
            get(read_prescription).delete(delete_prescription),
        )
        .with_state(state);
    serve(app).await
}

fn detail(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "detail": message }))).into_response()
}

fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

impl SignIn for AppState {
    type Caller = User;

    fn caller(&self, headers: &HeaderMap) -> Result<User, Box<Response>> {
        let refused = || {
            Box::new(detail(
                StatusCode::UNAUTHORIZED,
                "Authentication credentials were not provided.",
            ))
        };
        let key = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Token "))
            .ok_or_else(refused)?;
        let data = self.data();
        data.tokens.user(key, &data.users).ok_or_else(refused)
    }
}

async fn login(State(state): State<Shared>, Json(body): Json<Value>) -> Response {
    let username = body["username"].as_str();
    let password = body["password"].as_str();
    let mut data = state.data();
    let signed = common::check_login(USERS, &data.users, |u| &u.username, username, password);
    let Some(index) = signed else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"non_field_errors": ["Unable to log in with provided credentials."]})),
        )
            .into_response();
    };
    let key = data.tokens.open(&state.tokens, "", index);
    Json(json!({ "key": key })).into_response()
}

async fn read_me(Call { who, .. }: Call) -> Response {
    let user = signed_in!(who);
    Json(
        json!({"id": user.id, "username": user.username, "clinic": user.clinic, "role": user.role}),
    )
    .into_response()
}

fn patient_json(id: u64, (name, clinic): &(String, u64)) -> Value {
    json!({"id": id, "name": name, "clinic": clinic})
}

/// One DRF page (two results) of `items`, `next` an absolute URL as DRF writes it.
fn page(items: Vec<Value>, number: usize, headers: &HeaderMap, path: &str) -> Response {
    const SIZE: usize = 2;
    let count = items.len();
    let results: Vec<Value> = items
        .into_iter()
        .skip((number.max(1) - 1) * SIZE)
        .take(SIZE)
        .collect();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let next = (number.max(1) * SIZE < count)
        .then(|| format!("http://{host}{path}?page={}", number.max(1) + 1));
    Json(json!({"count": count, "next": next, "previous": null, "results": results}))
        .into_response()
}

async fn list_patients(
    Call { state, who }: Call,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let user = signed_in!(who);
    let number = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let data = state.data();
    let mine: Vec<Value> = data
        .patients
        .iter()
        .filter(|(_, p)| p.1 == user.clinic)
        .map(|(id, p)| patient_json(*id, p))
        .collect();
    page(mine, number, &headers, "/api/patients/")
}

/// Whether `user` may see patient `id` (its clinic's), or any patient when `any_clinic`.
fn sees(data: &Data, user: &User, id: u64, any_clinic: bool) -> bool {
    data.patients
        .get(&id)
        .is_some_and(|p| any_clinic || p.1 == user.clinic)
}

async fn read_patient(Call { state, who }: Call, Path(id): Path<u64>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    if !sees(&data, &user, id, state.flaws.patient_read_cross_clinic) {
        return not_found();
    }
    match data.patients.get(&id) {
        Some(patient) => Json(patient_json(id, patient)).into_response(),
        None => not_found(),
    }
}

fn appointment_json(id: u64, (patient, reason): &(u64, String)) -> Value {
    json!({"id": id, "patient": patient, "reason": reason})
}

async fn list_appointments(
    Call { state, who }: Call,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let user = signed_in!(who);
    // The filter is required and taken once: a repeated one is refused, as DRF's filter
    // backends validate it.
    let values: Vec<&str> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|pair| pair.strip_prefix("patient="))
        .collect();
    let [value] = values.as_slice() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"patient": ["Give exactly one patient."]})),
        )
            .into_response();
    };
    let Ok(patient) = value.parse::<u64>() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"patient": ["A valid integer is required."]})),
        )
            .into_response();
    };
    let data = state.data();
    let visible = sees(
        &data,
        &user,
        patient,
        state.flaws.appointments_by_foreign_patient,
    );
    let items: Vec<Value> = data
        .appointments
        .iter()
        .filter(|(_, a)| visible && a.0 == patient)
        .map(|(id, a)| appointment_json(*id, a))
        .collect();
    page(items, 1, &headers, "/api/appointments/")
}

async fn read_appointment(Call { state, who }: Call, Path(id): Path<u64>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    let any_clinic = state.flaws.appointment_read_cross_clinic;
    match data.appointments.get(&id) {
        Some(a) if sees(&data, &user, a.0, any_clinic) => {
            Json(appointment_json(id, a)).into_response()
        }
        _ => not_found(),
    }
}

fn doctor_only(user: &User) -> Option<Response> {
    (user.role != "doctor").then(|| {
        detail(
            StatusCode::FORBIDDEN,
            "You do not have permission to perform this action.",
        )
    })
}

async fn prescribe(Call { state, who }: Call, Json(body): Json<Value>) -> Response {
    let user = signed_in!(who);
    if let Some(refused) = doctor_only(&user) {
        return refused;
    }
    let (Some(patient), Some(drug)) = (body["patient"].as_u64(), body["drug"].as_str()) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"patient": ["This field is required."], "drug": ["This field is required."]})),
        )
            .into_response();
    };
    let mut data = state.data();
    if !sees(&data, &user, patient, false) {
        let message = format!("Invalid pk \"{patient}\" - object does not exist.");
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "patient": [message] })),
        )
            .into_response();
    }
    let id = data.next_prescription;
    data.next_prescription += 1;
    data.prescriptions.insert(id, (patient, drug.to_string()));
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "patient": patient, "drug": drug})),
    )
        .into_response()
}

/// The prescription `id` when it is for a patient of the caller's clinic.
fn own_prescription(data: &Data, user: &User, id: u64) -> Option<(u64, String)> {
    data.prescriptions
        .get(&id)
        .filter(|p| sees(data, user, p.0, false))
        .cloned()
}

async fn read_prescription(Call { state, who }: Call, Path(id): Path<u64>) -> Response {
    let user = signed_in!(who);
    let data = state.data();
    match own_prescription(&data, &user, id) {
        Some((patient, drug)) => {
            Json(json!({"id": id, "patient": patient, "drug": drug})).into_response()
        }
        None => not_found(),
    }
}

async fn delete_prescription(Call { state, who }: Call, Path(id): Path<u64>) -> Response {
    let user = signed_in!(who);
    let mut data = state.data();
    if own_prescription(&data, &user, id).is_none() {
        return not_found();
    }
    if !state.flaws.prescription_delete_by_nurse {
        if let Some(refused) = doctor_only(&user) {
            return refused;
        }
    }
    data.prescriptions.remove(&id);
    StatusCode::NO_CONTENT.into_response()
}
