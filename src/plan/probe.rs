//! The probe: one request the plan sends, with who sends it, whose data is at stake and
//! what the policy expects, plus the attack vocabulary and write confirmation it carries.
//! [`Probe::new`] is the one constructor every attack uses; the setters state what differs.

use super::{MalformedCase, NewAccount};
use crate::matrix::Access;
use crate::request::{Credential, RequestSpec};

/// The attack kinds the planner generates (the `attack` table in README's "What it does").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    IdSwap,
    ListLeak,
    NoAuth,
    BadAuth,
    Escalation,
    MassAssignment,
    ParamPollution,
    MethodOverride,
    VerbSwap,
    TenantSwap,
    Malformed,
    ExistenceLeak,
}

impl Attack {
    pub fn as_str(self) -> &'static str {
        match self {
            Attack::IdSwap => "id-swap",
            Attack::ListLeak => "list-leak",
            Attack::NoAuth => "no-auth",
            Attack::BadAuth => "bad-auth",
            Attack::Escalation => "escalation",
            Attack::MassAssignment => "mass-assignment",
            Attack::ParamPollution => "param-pollution",
            Attack::MethodOverride => "method-override",
            Attack::VerbSwap => "verb-swap",
            Attack::TenantSwap => "tenant-swap",
            Attack::Malformed => "malformed",
            Attack::ExistenceLeak => "existence-leak",
        }
    }
}

display_as_str!(Attack);

/// How a write is confirmed: the owner re-reads the object before and after the probe
/// and looks for the marker the probe wrote.
#[derive(Debug, Clone)]
pub struct WriteCheck {
    /// `None` when the spec has no read of the object: a granted write is then only
    /// `suspicious`, never confirmed.
    pub readback: Option<RequestSpec>,
    pub marker: String,
    /// How the read-back shows that the write landed.
    pub confirm: Confirm,
}

/// What in the read-back proves a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    /// The marker appears after, not before (the body carried it in a string).
    Marker,
    /// Any of these top-level fields took the value sent, having had another before
    /// (`mass-assignment`: privileged fields the caller must not set).
    Fields(Vec<(String, serde_json::Value)>),
    /// The read-back changed at all, volatile fields aside: for bodies with nothing to
    /// mark (an enum set to the value it already has), seen through audit fields.
    AnyChange,
    /// A delete: the owner read the object before and finds it gone (404/410) after.
    Gone,
    /// The write's own 2xx answer describes what it created with these fields set to
    /// the values sent (sign-up: the new account, which no identity can read back).
    Answer(Vec<(String, serde_json::Value)>),
}

#[derive(Debug, Clone)]
pub struct Probe {
    pub id: usize,
    pub attack: Attack,
    pub op: usize,
    /// Index of the identity that sends the probe.
    pub actor: usize,
    pub credential: Credential,
    /// The object at stake, when the request names one.
    pub object: Option<usize>,
    /// The identity whose response is the baseline (the owner, or a legitimate caller).
    pub baseline: Option<usize>,
    /// The request the baseline identity sends, when it is not the probe's own request
    /// (a polluted query or an overridden method must be compared with the plain one).
    pub baseline_request: Option<RequestSpec>,
    /// The policy cell for the actor's role on this operation.
    pub access: Access,
    /// What the policy says must happen: `false` = the API must refuse.
    pub expect_granted: bool,
    pub request: RequestSpec,
    pub write: Option<WriteCheck>,
    /// For `malformed`: how to regenerate (and shrink) the body this probe sends.
    pub malformed: Option<MalformedCase>,
    /// Where the swapped ID or forged credential went, for the report.
    pub detail: String,
    /// Sent by the actor when the probe proves a violation that changed the actor's own
    /// account (a role gained by mass assignment), to set it back.
    pub undo: Option<RequestSpec>,
    /// A sign-up's new account, logged in after a 2xx to show what it became.
    pub new_account: Option<Box<NewAccount>>,
    /// Reads the actor's role is denied, sent by the actor before and after a
    /// self-update: one that opens up shows a privilege the update gave it.
    pub privilege_reads: Vec<(usize, RequestSpec)>,
}

impl Probe {
    /// A probe of `attack` on `op` sent by `actor` with `request`, with the commonest
    /// answers for the rest: the actor's own credential, no object or baseline, the policy
    /// denying the call (`Access::Deny`, must be refused), no write, no detail. The plan
    /// numbers probes afterwards.
    pub fn new(attack: Attack, op: usize, actor: usize, request: RequestSpec) -> Probe {
        Probe {
            id: 0,
            attack,
            op,
            actor,
            credential: Credential::Normal,
            object: None,
            baseline: None,
            baseline_request: None,
            access: Access::Deny,
            expect_granted: false,
            request,
            write: None,
            malformed: None,
            detail: String::new(),
            undo: None,
            new_account: None,
            privilege_reads: Vec::new(),
        }
    }

    pub fn privilege_reads(mut self, reads: Vec<(usize, RequestSpec)>) -> Probe {
        self.privilege_reads = reads;
        self
    }

    pub fn new_account(mut self, account: Option<NewAccount>) -> Probe {
        self.new_account = account.map(Box::new);
        self
    }

    pub fn undo(mut self, undo: RequestSpec) -> Probe {
        self.undo = Some(undo);
        self
    }

    pub fn credential(mut self, credential: Credential) -> Probe {
        self.credential = credential;
        self
    }

    pub fn object(mut self, object: impl Into<Option<usize>>) -> Probe {
        self.object = object.into();
        self
    }

    pub fn baseline(mut self, baseline: impl Into<Option<usize>>) -> Probe {
        self.baseline = baseline.into();
        self
    }

    pub fn baseline_request(mut self, request: impl Into<Option<RequestSpec>>) -> Probe {
        self.baseline_request = request.into();
        self
    }

    /// The actor's policy cell, when it is not `Deny`.
    pub fn access(mut self, access: Access) -> Probe {
        self.access = access;
        self
    }

    /// The policy lets this call through (the probe checks what comes back, not a refusal).
    pub fn expect_granted(mut self) -> Probe {
        self.expect_granted = true;
        self
    }

    pub fn write(mut self, write: impl Into<Option<WriteCheck>>) -> Probe {
        self.write = write.into();
        self
    }

    pub fn malformed(mut self, case: MalformedCase) -> Probe {
        self.malformed = Some(case);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Probe {
        self.detail = detail.into();
        self
    }

    /// Whether only the victim's object in the answer (or exactly its owner's body) proves
    /// a leak. So for `param-pollution`, and for `id-swap` variants (the probes that carry
    /// a `baseline_request`: an encoded ID, or the victim's ID next to the actor's own):
    /// a server may ignore the odd form or serve the actor's own object, and an answer of
    /// the same shape as the owner's then proves nothing.
    pub fn proves_by_victim_object(&self) -> bool {
        self.attack == Attack::ParamPollution
            || (self.attack == Attack::IdSwap && self.baseline_request.is_some())
    }
}
