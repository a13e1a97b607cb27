//! The demo portal's records (invoices, tickets, files, users), their seed values, the
//! visibility rule with the traits it reads records through, and the clock formatting the
//! records use.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::USERS;

/// A user as the portal stores it; the role can change through `PUT /admin/users/{id}/role`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct User {
    pub id: u64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Invoice {
    pub id: u64,
    pub number: String,
    pub tenant_id: String,
    pub owner_id: u64,
    pub customer: String,
    pub description: String,
    pub amount_cents: u64,
    pub currency: String,
    pub status: String,
    pub issued_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Note {
    pub id: u64,
    pub author_id: u64,
    pub text: String,
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ticket {
    pub id: u64,
    pub tenant_id: String,
    pub owner_id: u64,
    pub subject: String,
    pub status: String,
    pub notes: Vec<Note>,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileMeta {
    pub id: String,
    pub tenant_id: String,
    pub owner_id: u64,
    pub name: String,
    pub content_type: String,
    pub size: u64,
}

/// A stored file: its metadata (what listings show) and its bytes (what downloads send).
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub meta: FileMeta,
    pub content: Vec<u8>,
}

/// Everything the portal mutates, behind one lock in the shared state.
#[derive(Debug)]
pub(crate) struct Store {
    pub users: Vec<User>,
    pub invoices: Vec<Invoice>,
    pub tickets: Vec<Ticket>,
    pub files: Vec<StoredFile>,
    pub next_ticket_id: u64,
    pub next_note_id: u64,
    /// Who changed each user's role last, and how often: shown to admins only.
    pub role_audit: std::collections::BTreeMap<u64, RoleAudit>,
}

/// The audit trail of one user's role, as `GET /admin/users/{userId}` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct RoleAudit {
    pub role_changes: u64,
    pub role_changed_by: Option<u64>,
}

/// A record found by its numeric id (users, invoices, tickets).
pub(crate) trait Numbered {
    fn id(&self) -> u64;
}

/// A record that belongs to a tenant and an owner: what the visibility rule judges.
pub(crate) trait Owned {
    fn tenant(&self) -> &str;
    fn owner(&self) -> u64;
}

// The traits only read fields every record names alike; a macro says so once.
macro_rules! record_traits {
    (numbered: $($numbered:ty),*; owned: $($owned:ty),*) => {
        $(impl Numbered for $numbered {
            fn id(&self) -> u64 {
                self.id
            }
        })*
        $(impl Owned for $owned {
            fn tenant(&self) -> &str {
                &self.tenant_id
            }
            fn owner(&self) -> u64 {
                self.owner_id
            }
        })*
    };
}

record_traits!(numbered: User, Invoice, Ticket; owned: Invoice, Ticket, FileMeta);

/// The secure visibility rule: clients see what they own, staff see their tenant, admins
/// see everything. Roles are read from the live user record so a role change bites at once.
pub(crate) fn visible(caller: &User, record: &(impl Owned + ?Sized)) -> bool {
    match caller.role.as_str() {
        "admin" => true,
        "staff" => caller.tenant_id.as_deref() == Some(record.tenant()),
        _ => caller.id == record.owner(),
    }
}

/// Copies of the records the caller may see: what every list route shows securely.
pub(crate) fn visible_records<T: Owned + Clone>(caller: &User, records: &[T]) -> Vec<T> {
    records
        .iter()
        .filter(|r| visible(caller, *r))
        .cloned()
        .collect()
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The current UTC time as RFC 3339 (`2026-03-01T12:00:00Z`), without a date crate.
pub(crate) fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Howard Hinnant's days-since-epoch → (year, month, day) for the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub(crate) const FILE_ALICE_CONTRACT: &str = "3f6c1d2e-8a4b-4c5d-9e7f-0a1b2c3d4e5f";
pub(crate) const FILE_ALICE_REPORT: &str = "7b2e9c40-1d3f-4a6b-8c5e-2f4a6b8c0d1e";
pub(crate) const FILE_BOB_SOW: &str = "c9d8e7f6-5a4b-4c3d-8e2f-1a0b9c8d7e6f";

/// A few hundred bytes that look like the start of a PDF, carry a line naming the file (so
/// a leaked download is recognisable) and include non-UTF-8 bytes (so clients must treat
/// the body as binary).
fn fake_pdf(title: &str, salt: u8) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    out.extend_from_slice(
        format!("1 0 obj << /Title ({title}) /Producer (Client Portal) >> endobj\n").as_bytes(),
    );
    out.extend_from_slice(b"2 0 obj << /Length 192 /Filter /FlateDecode >> stream\n");
    out.extend((0u8..192).map(|i| i.wrapping_mul(37).wrapping_add(salt) | 0x80));
    out.extend_from_slice(b"\nendstream endobj\n%%EOF\n");
    out
}

fn user(id: u64, email: &str, name: &str, role: &str, tenant: Option<&str>) -> User {
    User {
        id,
        email: email.into(),
        name: name.into(),
        role: role.into(),
        tenant_id: tenant.map(Into::into),
    }
}

#[allow(clippy::too_many_arguments)] // a seed row reads best as one call per record
fn invoice(
    id: u64,
    number: &str,
    tenant: &str,
    owner: u64,
    customer: &str,
    description: &str,
    amount_cents: u64,
    currency: &str,
    status: &str,
    issued_at: &str,
) -> Invoice {
    Invoice {
        id,
        number: number.into(),
        tenant_id: tenant.into(),
        owner_id: owner,
        customer: customer.into(),
        description: description.into(),
        amount_cents,
        currency: currency.into(),
        status: status.into(),
        issued_at: issued_at.into(),
    }
}

fn note(id: u64, author_id: u64, text: &str, created_at: &str) -> Note {
    Note {
        id,
        author_id,
        text: text.into(),
        created_at: created_at.into(),
    }
}

fn file(id: &str, tenant: &str, owner: u64, name: &str, salt: u8) -> StoredFile {
    let content = fake_pdf(name, salt);
    StoredFile {
        meta: FileMeta {
            id: id.into(),
            tenant_id: tenant.into(),
            owner_id: owner,
            name: name.into(),
            content_type: "application/pdf".into(),
            size: content.len() as u64,
        },
        content,
    }
}

impl Store {
    /// The fixed seed every server starts from.
    pub(crate) fn seed() -> Self {
        let users = USERS
            .iter()
            .map(|u| user(u.id, u.email, u.name, u.role, u.tenant))
            .collect();
        let invoices = vec![
            invoice(
                1001,
                "ACME-2026-0001",
                "acme",
                1,
                "Acme Corporation",
                "Managed hosting service, January 2026",
                129_900,
                "EUR",
                "paid",
                "2026-01-31T10:00:00Z",
            ),
            invoice(
                1002,
                "ACME-2026-0002",
                "acme",
                1,
                "Acme Corporation",
                "Priority support service, Q1 2026",
                45_000,
                "EUR",
                "open",
                "2026-03-31T10:00:00Z",
            ),
            invoice(
                2001,
                "GLOBEX-2026-0001",
                "globex",
                2,
                "Globex Industries, Inc.",
                "Data migration service, phase 1",
                870_000,
                "USD",
                "paid",
                "2026-02-15T14:30:00Z",
            ),
            invoice(
                2002,
                "GLOBEX-2026-0002",
                "globex",
                2,
                "Globex Industries, Inc.",
                "Security audit service, annual retainer",
                1_250_000,
                "USD",
                "open",
                "2026-04-01T09:00:00Z",
            ),
        ];
        let tickets = vec![
            Ticket {
                id: 501,
                tenant_id: "acme".into(),
                owner_id: 1,
                subject: "Billing service: duplicate charge on ACME-2026-0001".into(),
                status: "open".into(),
                notes: vec![
                    note(
                        9001,
                        1,
                        "Our card was charged twice for the January hosting invoice.",
                        "2026-02-02T08:15:00Z",
                    ),
                    note(
                        9002,
                        3,
                        "Confirmed; the duplicate charge is queued for refund.",
                        "2026-02-02T11:40:00Z",
                    ),
                ],
                updated_at: "2026-02-02T11:40:00Z".into(),
            },
            Ticket {
                id: 502,
                tenant_id: "globex".into(),
                owner_id: 2,
                subject: "VPN service outage at the Springfield office".into(),
                status: "open".into(),
                notes: vec![note(
                    9003,
                    2,
                    "Nobody in Springfield can reach the VPN since 07:00.",
                    "2026-03-10T07:20:00Z",
                )],
                updated_at: "2026-03-10T07:20:00Z".into(),
            },
            Ticket {
                id: 503,
                tenant_id: "acme".into(),
                owner_id: 1,
                subject: "Add two seats to the hosting service dashboard".into(),
                status: "closed".into(),
                notes: Vec::new(),
                updated_at: "2026-01-20T16:05:00Z".into(),
            },
        ];
        let files = vec![
            file(
                FILE_ALICE_CONTRACT,
                "acme",
                1,
                "acme-master-services-agreement-2026.pdf",
                11,
            ),
            file(
                FILE_ALICE_REPORT,
                "acme",
                1,
                "acme-q1-service-report.pdf",
                29,
            ),
            file(
                FILE_BOB_SOW,
                "globex",
                2,
                "globex-statement-of-work-2026.pdf",
                53,
            ),
        ];
        Store {
            users,
            invoices,
            tickets,
            files,
            next_ticket_id: 504,
            next_note_id: 9004,
            role_audit: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_772_366_400), "2026-03-01T12:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn visible_records_follow_the_role() {
        let seed = Store::seed();
        let ticket = |tenant: &str, owner_id: u64| Ticket {
            tenant_id: tenant.into(),
            owner_id,
            ..seed.tickets[0].clone()
        };
        let records = [ticket("acme", 1), ticket("acme", 3), ticket("globex", 2)];
        let seen = |role: &str| -> Vec<(String, u64)> {
            let caller = User {
                role: role.into(),
                tenant_id: Some("acme".into()),
                ..seed.users[0].clone()
            };
            let shown = visible_records(&caller, &records);
            shown
                .into_iter()
                .map(|t| (t.tenant_id, t.owner_id))
                .collect()
        };
        let acme = |owner: u64| ("acme".to_string(), owner);
        assert_eq!(seen("client"), [acme(1)]);
        assert_eq!(seen("staff"), [acme(1), acme(3)]);
        assert_eq!(seen("admin").len(), records.len());
    }

    #[test]
    fn seed_matches_contract() {
        let s = Store::seed();
        assert!(s.invoices.iter().all(|i| i.description.contains("service")));
        assert!(s.tickets.iter().all(|t| t.subject.contains("service")));
        assert!(s
            .files
            .iter()
            .all(|f| std::str::from_utf8(&f.content).is_err() && f.content.len() > 200));
    }
}
