//! The fixtures themselves, checked by hand with plain HTTP: each planted flaw does what it
//! claims and its secure twin refuses, so a scan that misses a flaw is the scanner's miss,
//! not the fixture's.

use super::common::{password_of, PlantedFlaws, Server};
use super::{a_newsdesk, b_marketplace, c_ci_teams, d_trackr, e_clinic, f_shop};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

async fn status_and_json(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("the fixture answers");
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// Runs `check` (a client, the base URL, whether flawed) on the fixture `spawn` serves with
/// every flaw planted, then on its secure twin, stopping each server after.
async fn in_both_modes<F: PlantedFlaws, Served: std::future::Future<Output = Server>>(
    spawn: impl Fn(F) -> Served,
    check: impl AsyncFn(&Client, &str, bool),
) {
    for flawed in [true, false] {
        let server = spawn(F::all_or_none(flawed)).await;
        check(&client(), &server.base_url, flawed).await;
        server.stop().await;
    }
}

/// What `login` (user, password) answers for each of a fixture's scan identities (its
/// `USERS`, in their order): the passwords stay written once, in the fixture.
async fn sign_in_each<const N: usize>(
    users: &[(&str, &str, &str)],
    login: impl AsyncFn(&str, &str) -> String,
) -> [String; N] {
    let mut signed = Vec::new();
    for (user, password, _) in users {
        signed.push(login(user, password).await);
    }
    signed.try_into().unwrap_or_else(|all: Vec<String>| {
        panic!("the fixture has {} users, the test names {N}", all.len())
    })
}

#[tokio::test]
async fn newsdesk_flaws_and_twins() {
    in_both_modes(
        a_newsdesk::spawn,
        async |http: &Client, base: &str, flawed: bool| {
            let alice_password = password_of(a_newsdesk::USERS, "alice").expect("alice's password");
            let alice = |path: &str| {
                http.get(format!("{base}{path}"))
                    .basic_auth("alice", Some(alice_password))
            };
            let (status, _) = status_and_json(http.get(format!("{base}/articles/v1"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let (status, list) = status_and_json(alice("/articles/v1")).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(list["Articles"].as_array().map(Vec::len), Some(2));
            let (status, own) =
                status_and_json(alice("/articles/v1/Harbour%20Expansion%20Plans")).await;
            assert_eq!(
                (status, &own["account"]),
                (StatusCode::OK, &json!("north-trading"))
            );
            // Another account's article, and one that exists nowhere.
            let (other, _) = status_and_json(alice("/articles/v1/Rail%20Strike%20Impact")).await;
            let (missing, _) = status_and_json(alice("/articles/v1/No%20Such%20Title")).await;
            assert_eq!(missing, StatusCode::NOT_FOUND);
            assert_eq!(other.is_success(), flawed, "article_read_bola");
            let (other, _) = status_and_json(alice("/accounts/v2/south-freight")).await;
            assert_eq!(other.is_success(), flawed, "account_read_bola");
            let (_, accounts) = status_and_json(alice("/accounts/v2")).await;
            let count = accounts["accounts"].as_array().map_or(0, Vec::len);
            assert_eq!(count, if flawed { 2 } else { 1 }, "accounts_list_leak");
            // The sign-up answers only "success"; what the account became shows once it signs in.
            let (status, answer) = status_and_json(
                http.post(format!("{base}/users/v1/register"))
                    .json(&json!({"username": "erin", "password": "erin-pass-4", "admin": true})),
            )
            .await;
            assert_eq!(
                (status, &answer["status"]),
                (StatusCode::CREATED, &json!("success"))
            );
            assert!(answer.get("admin").is_none());
            let (customer, _) = status_and_json(alice("/admin/v1/audit")).await;
            assert_eq!(customer, StatusCode::FORBIDDEN);
            let (erin, _) = status_and_json(
                http.get(format!("{base}/admin/v1/audit"))
                    .basic_auth("erin", Some("erin-pass-4")),
            )
            .await;
            assert_eq!(erin.is_success(), flawed, "register_admin_flag");
        },
    )
    .await;
}

/// The `sid` session cookie of each of the marketplace's scan identities (its `USERS`, in
/// order), from its form login.
async fn market_sessions<const N: usize>(http: &Client, base: &str) -> [String; N] {
    sign_in_each(b_marketplace::USERS, async |user, password| {
        let response = http
            .post(format!("{base}/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .expect("login answers");
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("a sid cookie");
        cookie.to_string()
    })
    .await
}

#[tokio::test]
async fn marketplace_flaws_and_twins() {
    in_both_modes(
        b_marketplace::spawn,
        async |http: &Client, base: &str, flawed: bool| {
            let [alice, bob, mia] = market_sessions(http, base).await;
            let call = |method: reqwest::Method, path: &str, cookie: &str| {
                http.request(method, format!("{base}{path}"))
                    .header("cookie", cookie.to_string())
            };
            use reqwest::Method as M;
            let (status, _) = status_and_json(http.get(format!("{base}/products"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let (_, own) = status_and_json(call(M::GET, "/products", &alice)).await;
            assert_eq!(own.as_array().map(Vec::len), Some(2));
            let (other, _) = status_and_json(call(M::GET, "/products/P-2001", &alice)).await;
            assert_eq!(other.is_success(), flawed, "product_read_bola");
            // Creates are PUT on the collection.
            let (status, created) = status_and_json(
                call(M::PUT, "/products", &bob)
                    .json(&json!({"name": "Wool scarf", "price_cents": 1800})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            let id = created["product_id"]
                .as_str()
                .expect("product_id")
                .to_string();
            let (status, _) =
                status_and_json(call(M::DELETE, &format!("/products/{id}"), &alice)).await;
            assert_eq!(status.is_success(), flawed, "product_delete_by_seller");
            // The subject of a profile update is its body's username.
            let (status, _) = status_and_json(
                call(M::PUT, "/profile", &alice)
                    .json(&json!({"username": "bob", "email": "taken@evil.example"})),
            )
            .await;
            assert_eq!(status.is_success(), flawed, "profile_subject_in_body");
            let (_, profile) = status_and_json(call(M::GET, "/profile", &bob)).await;
            assert_eq!(profile["email"] == "taken@evil.example", flawed);
            // Roles are free strings; only real ones are accepted.
            let (status, user) = status_and_json(
                call(M::PUT, "/users", &mia).json(&json!({
                    "username": "sam", "password": "sam-pass-1", "email": "sam@market.example", "role": "Seller"
                })),
            )
            .await;
            assert_eq!(
                (status, &user["role"]),
                (StatusCode::CREATED, &json!("Seller"))
            );
            let (status, body) =
                status_and_json(call(M::PUT, "/users/sam/role", &mia).json(&json!({"role": "Boss"})))
                    .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body["error"].as_str().is_some_and(|e| e.contains("`role`")));
            let (status, _) = status_and_json(
                call(M::PUT, "/users/sam/role", &alice).json(&json!({"role": "Manager"})),
            )
            .await;
            assert_eq!(status.is_success(), flawed, "role_change_by_seller");
            let (_, sam) = status_and_json(call(M::GET, "/users/sam", &mia)).await;
            assert_eq!(sam["role"] == "Manager", flawed);
        },
    )
    .await;
}

/// The bearer token of each of the CI service's scan identities (its `USERS`, in order),
/// from its JSON login.
async fn ci_tokens<const N: usize>(http: &Client, base: &str) -> [String; N] {
    sign_in_each(c_ci_teams::USERS, async |email, password| {
        let (status, body) = status_and_json(
            http.post(format!("{base}/api/auth/token"))
                .json(&json!({"email": email, "password": password})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    })
    .await
}

#[tokio::test]
async fn ci_teams_flaws_and_twins() {
    in_both_modes(
        c_ci_teams::spawn,
        async |http: &Client, base: &str, flawed: bool| {
            let [alice, _olga, bob] = ci_tokens(http, base).await;
            let get = |path: &str, token: &str| http.get(format!("{base}{path}")).bearer_auth(token);
            let (status, _) = status_and_json(http.get(format!("{base}/api/jobs"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            // Pages of two, with the total.
            let (_, jobs) = status_and_json(get("/api/jobs", &alice)).await;
            assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(2));
            assert_eq!(jobs["total_entries"], 3);
            let (_, rest) = status_and_json(get("/api/jobs?offset=2&limit=2", &alice)).await;
            assert_eq!(rest["jobs"][0]["job_id"], 503);
            let (other, _) = status_and_json(get("/api/jobs/601", &alice)).await;
            assert_eq!(other.is_success(), flawed, "job_read_bola");
            let (missing, _) = status_and_json(get("/api/jobs/999999", &alice)).await;
            assert_eq!(missing, StatusCode::NOT_FOUND);
            let (_, errors) = status_and_json(get("/api/build_errors", &bob)).await;
            assert_eq!(
                errors["total_entries"],
                if flawed { 3 } else { 1 },
                "build_errors_list_leak"
            );
            let (status, _) = status_and_json(get("/api/build_errors/9001", &bob)).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let (status, me) = status_and_json(
                http.patch(format!("{base}/api/me"))
                    .bearer_auth(&alice)
                    .json(&json!({"display_name": "Alice L.", "is_admin": true, "role": "owner"})),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(me["display_name"], "Alice L.");
            assert_eq!(me["is_admin"] == true, flawed, "me_mass_assignment");
            let (status, user) = status_and_json(
                http.post(format!("{base}/api/users/register")).json(&json!({
                    "email": "eve@ci.example", "password": "eve-secret-9", "display_name": "Eve", "admin": true
                })),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            assert_eq!(user["is_admin"] == true, flawed, "register_admin_flag");
            // A job write must repeat the job's own job_id and team_id; red's job 501 by blue's bob.
            let put = |job: u64, body: Value, token: &str| {
                http.put(format!("{base}/api/jobs/{job}"))
                    .bearer_auth(token)
                    .json(&body)
            };
            let (status, _) = status_and_json(put(
                501,
                json!({"job_id": 1, "team_id": 10, "pipeline": "x"}),
                &alice,
            ))
            .await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "job_id must match"
            );
            let (own, _) = status_and_json(put(
                501,
                json!({"job_id": 501, "team_id": 10, "pipeline": "nightly"}),
                &alice,
            ))
            .await;
            assert_eq!(own, StatusCode::OK);
            let (other, _) = status_and_json(put(
                501,
                json!({"job_id": 501, "team_id": 10, "pipeline": "hijacked"}),
                &bob,
            ))
            .await;
            assert_eq!(other.is_success(), flawed, "job_write_bola");
        },
    )
    .await;
}

/// The `X-Auth-Token` of each of the tracker's scan identities (its `USERS`, in order),
/// from its nested JSON login.
async fn trackr_tokens<const N: usize>(http: &Client, base: &str) -> [String; N] {
    sign_in_each(d_trackr::USERS, async |login, password| {
        let (status, body) = status_and_json(
            http.post(format!("{base}/v2/sessions"))
                .json(&json!({"user": {"login": login, "password": password}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        body["session"]["token"]
            .as_str()
            .expect("session.token")
            .to_string()
    })
    .await
}

#[tokio::test]
async fn trackr_flaws_and_twins() {
    in_both_modes(
        d_trackr::spawn,
        async |http: &Client, base: &str, flawed: bool| {
            let [ann, max, zoe, _root] = trackr_tokens(http, base).await;
            let call = |method: reqwest::Method, path: &str, token: &str| {
                http.request(method, format!("{base}{path}"))
                    .header("X-Auth-Token", token)
            };
            let get = |path: &str, token: &str| call(reqwest::Method::GET, path, token);
            let ids = |list: &Value| -> Vec<String> {
                list["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| item["id"].as_str().map(str::to_string))
                    .collect()
            };
            let (status, _) = status_and_json(http.get(format!("{base}/v2/me"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let (_, me) = status_and_json(get("/v2/me", &ann)).await;
            assert_eq!(me["data"]["attributes"]["org"], "acme");
            let (_, acme) = status_and_json(get("/v2/orgs/acme/projects", &ann)).await;
            let (_, zenith) = status_and_json(get("/v2/orgs/zenith/projects", &zoe)).await;
            let (mine, theirs) = (ids(&acme), ids(&zenith));
            assert_eq!((mine.len(), theirs.len()), (2, 2));
            let (status, _) = status_and_json(get("/v2/orgs/zenith/projects", &ann)).await;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let (other, _) =
                status_and_json(get(&format!("/v2/projects/{}", theirs[0]), &ann)).await;
            assert_eq!(other.is_success(), flawed, "project_read_cross_org");
            // A zenith note read through ann's own project.
            let (_, notes) =
                status_and_json(get(&format!("/v2/projects/{}/notes", theirs[0]), &zoe)).await;
            let note = notes["data"][0]["id"].as_u64().expect("a note id");
            let through_mine = format!("/v2/projects/{}/notes/{note}", mine[0]);
            let (other, _) = status_and_json(get(&through_mine, &ann)).await;
            assert_eq!(other.is_success(), flawed, "note_outside_project");
            let (status, _) = status_and_json(get("/v2/admin/users", &ann)).await;
            assert_eq!(status.is_success(), flawed, "admin_users_open");
            let create = json!({"data": {"type": "projects", "attributes": {"name": "probe"}}});
            let (status, _) = status_and_json(
                call(reqwest::Method::POST, "/v2/orgs/zenith/projects", &ann).json(&create),
            )
            .await;
            assert_eq!(status.is_success(), flawed, "project_create_in_foreign_org");
            // A zenith task deleted through ann's own project.
            let (_, tasks) =
                status_and_json(get(&format!("/v2/projects/{}/tasks", theirs[1]), &zoe)).await;
            let task = tasks["data"][0]["id"]
                .as_str()
                .expect("a task id")
                .to_string();
            let through_mine = format!("/v2/projects/{}/tasks/{task}", mine[0]);
            let (status, _) =
                status_and_json(call(reqwest::Method::DELETE, &through_mine, &ann)).await;
            assert_eq!(status.is_success(), flawed, "task_delete_outside_project");
            let (status, _) = status_and_json(call(
                reqwest::Method::DELETE,
                &format!("/v2/projects/{}", mine[1]),
                &max,
            ))
            .await;
            assert_eq!(status.is_success(), flawed, "project_delete_by_viewer");
        },
    )
    .await;
}

/// The `Token` key of each of the clinic's scan identities (its `USERS`, in order).
async fn clinic_keys<const N: usize>(http: &Client, base: &str) -> [String; N] {
    sign_in_each(e_clinic::USERS, async |username, password| {
        let (status, body) = status_and_json(
            http.post(format!("{base}/api/auth/login/"))
                .json(&json!({"username": username, "password": password})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        format!("Token {}", body["key"].as_str().expect("key"))
    })
    .await
}

#[tokio::test]
async fn clinic_flaws_and_twins() {
    in_both_modes(
        e_clinic::spawn,
        async |http: &Client, base: &str, flawed: bool| {
            let [ann, nia, _ben] = clinic_keys(http, base).await;
            let call = |method: reqwest::Method, path: &str, key: &str| {
                http.request(method, format!("{base}{path}"))
                    .header("Authorization", key)
            };
            let get = |path: &str, key: &str| call(reqwest::Method::GET, path, key);
            let (status, _) = status_and_json(http.get(format!("{base}/api/patients/"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            // Pages of two with an absolute `next`.
            let (_, first) = status_and_json(get("/api/patients/", &ann)).await;
            assert_eq!(first["count"], 3);
            assert!(first["next"]
                .as_str()
                .is_some_and(|n| n.starts_with("http://") && n.ends_with("?page=2")));
            // Patient 103 and appointment 503 are south clinic's.
            let (other, _) = status_and_json(get("/api/patients/103/", &ann)).await;
            assert_eq!(other.is_success(), flawed, "patient_read_cross_clinic");
            let (_, listed) = status_and_json(get("/api/appointments/?patient=103", &ann)).await;
            assert_eq!(
                listed["count"],
                if flawed { 1 } else { 0 },
                "appointments_by_foreign_patient"
            );
            let (status, _) =
                status_and_json(get("/api/appointments/?patient=100&patient=103", &ann)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            let (other, _) = status_and_json(get("/api/appointments/503/", &ann)).await;
            assert_eq!(other.is_success(), flawed, "appointment_read_cross_clinic");
            // A prescription for a foreign patient is refused either way.
            let foreign = json!({"patient": 103, "drug": "aspirin"});
            let (status, _) = status_and_json(
                call(reqwest::Method::POST, "/api/prescriptions/", &ann).json(&foreign),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            let own = json!({"patient": 100, "drug": "aspirin"});
            let (status, created) = status_and_json(
                call(reqwest::Method::POST, "/api/prescriptions/", &ann).json(&own),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            let path = format!("/api/prescriptions/{}/", created["id"]);
            let (status, _) = status_and_json(call(reqwest::Method::DELETE, &path, &nia)).await;
            assert_eq!(status.is_success(), flawed, "prescription_delete_by_nurse");
        },
    )
    .await;
}

/// The bearer token of each of the shop's scan identities (its `USERS`, in order).
async fn shop_tokens<const N: usize>(http: &Client, base: &str) -> [String; N] {
    sign_in_each(f_shop::USERS, async |email, password| {
        let (status, body) = status_and_json(
            http.post(format!("{base}/api/auth/login"))
                .json(&json!({"email": email, "password": password})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        body["data"]["token"]
            .as_str()
            .expect("data.token")
            .to_string()
    })
    .await
}

#[tokio::test]
async fn shop_flaws_and_twins() {
    in_both_modes(
        f_shop::spawn,
        async |http: &Client, base: &str, flawed: bool| {
            let [ann, bob, _adm] = shop_tokens(http, base).await;
            let call = |method: reqwest::Method, path: &str, token: &str| {
                http.request(method, format!("{base}{path}"))
                    .bearer_auth(token)
            };
            let get = |path: &str, token: &str| call(reqwest::Method::GET, path, token);
            let (status, _) = status_and_json(http.get(format!("{base}/api/orders"))).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            let (_, me) = status_and_json(get("/api/users/me", &bob)).await;
            let bob_id = me["data"]["_id"].as_str().expect("_id").to_string();
            let (_, bobs) = status_and_json(get("/api/orders", &bob)).await;
            let order = bobs["data"][0]["_id"]
                .as_str()
                .expect("an order")
                .to_string();
            let (other, _) = status_and_json(get(&format!("/api/orders/{order}"), &ann)).await;
            assert_eq!(other.is_success(), flawed, "order_read_any");
            let profile = format!("/api/users/{bob_id}/profile");
            let (other, _) = status_and_json(get(&profile, &ann)).await;
            assert_eq!(other.is_success(), flawed, "profile_read_any");
            // An order ann files in bob's name shows in bob's list only when flawed.
            let body = json!({"items": ["probe"], "userId": bob_id, "address": "for-bob"});
            let (status, _) =
                status_and_json(call(reqwest::Method::POST, "/api/orders", &ann).json(&body)).await;
            assert_eq!(status, StatusCode::CREATED);
            let (_, bobs) = status_and_json(get("/api/orders", &bob)).await;
            let filed = bobs["data"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["address"] == "for-bob");
            assert_eq!(filed, flawed, "order_created_for_anyone");
            let (status, _) = status_and_json(call(
                reqwest::Method::DELETE,
                &format!("/api/orders/{order}"),
                &bob,
            ))
            .await;
            assert_eq!(status.is_success(), flawed, "order_delete_by_user");
        },
    )
    .await;
}
