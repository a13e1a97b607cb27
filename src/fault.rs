//! Faults of the target, as opposed to answers: what kind of fault an exchange met
//! (connection reset, timeout, garbage or truncated body, 5xx, 429, lost session, wiped
//! data), the rule that a fault is never judged `enforced` or `violation`, and the tally
//! per kind that the report's `faults` section shows. Plain data owned by no stage (like
//! [`crate::exchange`]): exec records the faults, the run applies the rule, report counts.

use crate::exchange::Exchange;
use crate::judge::{Judgement, Verdict};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One kind of fault, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// The connection closed (or was reset) before an answer came.
    ConnectionReset,
    /// No answer within the engagement's `timeout_ms`.
    Timeout,
    /// A 2xx said to be JSON whose body is not JSON.
    GarbageBody,
    /// The answer's body broke off before its end.
    TruncatedBody,
    /// A 5xx answer.
    ServerError,
    /// A 429 answer (rate limited).
    RateLimited,
    /// The identity's session was gone (its positive control failed too) and it logged
    /// in again, or could not.
    SessionLost,
    /// The object was gone for its own owner too (the positive control answered 404/410).
    DataWiped,
}

impl FaultKind {
    pub const ALL: [FaultKind; 8] = [
        FaultKind::ConnectionReset,
        FaultKind::Timeout,
        FaultKind::GarbageBody,
        FaultKind::TruncatedBody,
        FaultKind::ServerError,
        FaultKind::RateLimited,
        FaultKind::SessionLost,
        FaultKind::DataWiped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::ConnectionReset => "connection-reset",
            FaultKind::Timeout => "timeout",
            FaultKind::GarbageBody => "garbage-body",
            FaultKind::TruncatedBody => "truncated-body",
            FaultKind::ServerError => "server-error",
            FaultKind::RateLimited => "rate-limited",
            FaultKind::SessionLost => "session-lost",
            FaultKind::DataWiped => "data-wiped",
        }
    }
}

/// The fault this one answer is, read from the answer alone; `None` for a real answer
/// (a refusal is an answer). Lost sessions and wiped data need the run's positive controls
/// and are added by the executor and the run, not found here.
pub fn classify(e: &Exchange) -> Option<FaultKind> {
    match (e.status, e.error.as_deref()) {
        (None, Some(error)) => {
            // The executor's error texts start with what happened (see exec/client.rs).
            if error.starts_with("timed out") {
                Some(FaultKind::Timeout)
            } else if error.starts_with("connection failed") || error.starts_with("request failed")
            {
                Some(FaultKind::ConnectionReset)
            } else if error.starts_with("session of `") {
                Some(FaultKind::SessionLost)
            } else {
                // A credential that could not be built is our side, not the target's.
                None
            }
        }
        (None, None) => None,
        (Some(_), Some(_)) => Some(FaultKind::TruncatedBody),
        // 501 refuses a method the server does not route (see the judge).
        (Some(s), None) if s >= 500 && s != 501 => Some(FaultKind::ServerError),
        (Some(429), None) => Some(FaultKind::RateLimited),
        (Some(s), None) if (200..300).contains(&s) && garbage(e) => Some(FaultKind::GarbageBody),
        _ => None,
    }
}

/// A body that says it is JSON and is not (a body we cut at the cap is not garbage).
fn garbage(e: &Exchange) -> bool {
    let json = e
        .content_type
        .as_deref()
        .is_some_and(|t| t.to_ascii_lowercase().contains("json"));
    json && !e.truncated
        && !e.body.is_empty()
        && serde_json::from_slice::<serde::de::IgnoredAny>(&e.body).is_err()
}

/// The rule: a probe whose answer is a fault is never `enforced`, `violation`,
/// `suspicious` or `over-restricted`. A 5xx stays `server-error` (the judge's verdict for
/// it, whatever the legitimate caller got); every other fault makes it `inconclusive`.
pub fn guard(judgement: Judgement, exchange: &Exchange) -> Judgement {
    let Some(kind) = classify(exchange) else {
        return judgement;
    };
    match (kind, judgement.verdict) {
        (_, Verdict::Inconclusive) => judgement,
        (FaultKind::ServerError, Verdict::ServerError) => judgement,
        (FaultKind::ServerError, was) => Judgement::new(
            Verdict::ServerError,
            format!(
                "answered {} (a server error, not evidence either way); was {}: {}",
                exchange.status.unwrap_or_default(),
                was.as_str(),
                judgement.reason
            ),
        ),
        (kind, was) => Judgement::new(
            Verdict::Inconclusive,
            format!(
                "the answer was a fault ({}), not a verdict; was {}: {}",
                kind.as_str(),
                was.as_str(),
                judgement.reason
            ),
        ),
    }
}

/// The owner's read-back is the evidence of a write: one that was a fault (lost sessions
/// aside, which are evidence of their own) decides nothing, whatever the write answered.
/// The judgement, and the read-back's fault when it overruled it.
pub fn guard_read_back<'a>(
    judgement: Judgement,
    read_backs: impl IntoIterator<Item = &'a Exchange>,
) -> (Judgement, Option<FaultKind>) {
    let fault = read_backs
        .into_iter()
        .find_map(classify)
        .filter(|kind| *kind != FaultKind::SessionLost);
    match fault {
        Some(kind)
            if !matches!(
                judgement.verdict,
                Verdict::Inconclusive | Verdict::ServerError
            ) =>
        {
            let overruled = Judgement::new(
                Verdict::Inconclusive,
                format!(
                    "the owner's read-back met a fault ({}), so the write's effect is unknown; was {}: {}",
                    kind.as_str(),
                    judgement.verdict.as_str(),
                    judgement.reason
                ),
            );
            (overruled, Some(kind))
        }
        _ => (judgement, None),
    }
}

/// The report's `faults` section: per kind, how often it was met by probes, which probes,
/// how many were retried away, and the verdicts of the probes whose judged answer it was.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FaultSection {
    /// Faults met by probes, all kinds.
    pub total: usize,
    /// One row per kind met, in [`FaultKind::ALL`] order.
    pub by_kind: Vec<FaultCount>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultCount {
    pub kind: FaultKind,
    /// Times met by a probe's requests (retries included).
    pub count: usize,
    /// Of those, met on an attempt that was retried (or a session renewed) and then
    /// answered normally: the probe was judged on the later answer.
    pub recovered: usize,
    /// IDs of the probes that met it (the first [`PROBES_LISTED`]).
    pub probes: Vec<usize>,
    /// Probes beyond the listed ones.
    #[serde(default)]
    pub more_probes: usize,
    /// verdict → probes judged on an answer that was this fault. Never `enforced` or
    /// `violation`.
    #[serde(default)]
    pub verdicts: BTreeMap<String, usize>,
}

/// Probe IDs listed per kind.
pub const PROBES_LISTED: usize = 50;

impl FaultCount {
    /// A kind not met yet.
    fn none(kind: FaultKind) -> Self {
        FaultCount {
            kind,
            count: 0,
            recovered: 0,
            probes: Vec::new(),
            more_probes: 0,
            verdicts: BTreeMap::new(),
        }
    }

    /// Lists `probe` among the first [`PROBES_LISTED`], or counts it beyond them.
    fn list(&mut self, probe: usize) {
        if self.probes.len() < PROBES_LISTED {
            self.probes.push(probe);
        } else {
            self.more_probes += 1;
        }
    }
}

/// Counts faults probe by probe, as the results arrive.
#[derive(Debug, Default)]
pub struct FaultTally {
    rows: BTreeMap<FaultKind, FaultCount>,
}

impl FaultTally {
    /// Records the faults `exchange` met for probe `probe`, judged `verdict`.
    pub fn add(&mut self, probe: usize, exchange: &Exchange, verdict: Verdict) {
        let judged_on = classify(exchange);
        let last = exchange.faults.len().saturating_sub(1);
        for (i, &kind) in exchange.faults.iter().enumerate() {
            let row = self
                .rows
                .entry(kind)
                .or_insert_with(|| FaultCount::none(kind));
            row.count += 1;
            // A wiped object is judged on its (real) 404: the fault is the judged answer.
            // So is the last fault of a probe left inconclusive on a real answer (its
            // owner's read-back was the fault).
            let judged = kind == FaultKind::DataWiped
                || (i == last
                    && (judged_on == Some(kind)
                        || (judged_on.is_none() && verdict == Verdict::Inconclusive)));
            if judged {
                *row.verdicts
                    .entry(verdict.as_str().to_string())
                    .or_default() += 1;
            } else {
                row.recovered += 1;
            }
            // Each probe's result is added once; a kind met twice by it is one probe.
            if !exchange.faults[..i].contains(&kind) {
                row.list(probe);
            }
        }
    }

    /// The report section; `None` when no probe met a fault.
    pub fn section(&self) -> Option<FaultSection> {
        if self.rows.is_empty() {
            return None;
        }
        let by_kind: Vec<FaultCount> = FaultKind::ALL
            .iter()
            .filter_map(|k| self.rows.get(k).cloned())
            .collect();
        Some(FaultSection {
            total: by_kind.iter().map(|r| r.count).sum(),
            by_kind,
        })
    }
}

/// The sections of shard reports as one (`rolegrid merge`): counts added per kind, probe
/// IDs joined up to [`PROBES_LISTED`]; `None` when no shard met a fault.
pub fn merge<'a>(sections: impl Iterator<Item = &'a FaultSection>) -> Option<FaultSection> {
    let mut rows: BTreeMap<FaultKind, FaultCount> = BTreeMap::new();
    for row in sections.flat_map(|s| &s.by_kind) {
        let into = rows
            .entry(row.kind)
            .or_insert_with(|| FaultCount::none(row.kind));
        into.count += row.count;
        into.recovered += row.recovered;
        into.more_probes += row.more_probes;
        for (verdict, n) in &row.verdicts {
            *into.verdicts.entry(verdict.clone()).or_default() += n;
        }
        for &probe in &row.probes {
            if !into.probes.contains(&probe) {
                into.list(probe);
            }
        }
    }
    FaultTally { rows }.section()
}

/// The `report.md` section: one row per kind.
pub fn markdown(section: &FaultSection) -> String {
    let mut md = format!(
        "\n## Faults of the target\n\n{} fault(s) met by probes; a probe judged on a fault is \
         `server-error` (a 5xx) or `inconclusive`, never `enforced` or `violation`.\n\n\
         | Fault | Met | Retried away | Judged on it | Probes |\n|---|---|---|---|---|\n",
        section.total
    );
    for row in &section.by_kind {
        let verdicts: Vec<String> = row
            .verdicts
            .iter()
            .map(|(verdict, n)| format!("{n} {verdict}"))
            .collect();
        let mut probes: Vec<String> = row.probes.iter().map(|id| format!("#{id}")).collect();
        if row.more_probes > 0 {
            probes.push(format!("and {} more", row.more_probes));
        }
        md.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            row.kind.as_str(),
            row.count,
            row.recovered,
            if verdicts.is_empty() {
                "-".to_string()
            } else {
                verdicts.join(", ")
            },
            probes.join(", ")
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: &str, body: &[u8]) -> Exchange {
        Exchange {
            status: Some(status),
            content_type: Some(content_type.into()),
            body: body.to_vec(),
            ..Exchange::default()
        }
    }

    fn failed(error: &str) -> Exchange {
        Exchange {
            error: Some(error.into()),
            ..Exchange::default()
        }
    }

    #[test]
    fn a_faulted_read_back_leaves_a_write_undecided_but_a_lost_session_does_not() {
        let violation = || Judgement::new(Verdict::Violation, "the owner's read-back shows it");
        let fine = answer(200, "application/json", b"{\"a\":1}");
        let (j, fault) = guard_read_back(violation(), [&fine, &failed("timed out: x")]);
        assert_eq!(
            (j.verdict, fault),
            (Verdict::Inconclusive, Some(FaultKind::Timeout))
        );
        assert!(
            j.reason.contains("was violation: the owner's"),
            "{}",
            j.reason
        );
        let lost = failed("session of `alice` is dead: gone");
        let (j, fault) = guard_read_back(violation(), [&fine, &lost]);
        assert_eq!((j.verdict, fault), (Verdict::Violation, None));
        let (j, fault) = guard_read_back(violation(), [&fine, &fine]);
        assert_eq!((j.verdict, fault), (Verdict::Violation, None));
    }

    #[test]
    fn classifies_each_fault_and_leaves_answers_alone() {
        let json = "application/json";
        assert_eq!(classify(&failed("timed out: x")), Some(FaultKind::Timeout));
        assert_eq!(
            classify(&failed(
                "request failed: connection closed before message completed"
            )),
            Some(FaultKind::ConnectionReset)
        );
        assert_eq!(
            classify(&failed("session of `alice` is dead: gone")),
            Some(FaultKind::SessionLost)
        );
        assert_eq!(classify(&failed("bad method: x")), None);
        let mut cut = answer(200, json, b"{\"a\":");
        cut.error = Some("the body could not be read: eof".into());
        assert_eq!(classify(&cut), Some(FaultKind::TruncatedBody));
        assert_eq!(
            classify(&answer(200, json, b"\xff\x00{garbage")),
            Some(FaultKind::GarbageBody)
        );
        // Cut at our own cap, HTML, an empty body or a refusal: answers, not faults.
        let mut capped = answer(200, json, b"{\"a\":");
        capped.truncated = true;
        assert_eq!(classify(&capped), None);
        assert_eq!(classify(&answer(200, "text/html", b"<p>hi")), None);
        assert_eq!(classify(&answer(204, json, b"")), None);
        assert_eq!(classify(&answer(403, json, b"nope")), None);
        assert_eq!(classify(&answer(200, json, b"{\"a\":1}")), None);
        assert_eq!(
            classify(&answer(503, json, b"")),
            Some(FaultKind::ServerError)
        );
        assert_eq!(
            classify(&answer(429, json, b"")),
            Some(FaultKind::RateLimited)
        );
    }

    #[test]
    fn a_fault_is_never_enforced_or_violation() {
        let json = "application/json";
        for verdict in [
            Verdict::Enforced,
            Verdict::Violation,
            Verdict::Suspicious,
            Verdict::OverRestricted,
        ] {
            let j = || Judgement::new(verdict, "r");
            let limited = guard(j(), &answer(429, json, b""));
            assert_eq!(limited.verdict, Verdict::Inconclusive);
            assert!(
                limited.reason.contains("rate-limited"),
                "{}",
                limited.reason
            );
            let garbage = guard(j(), &answer(200, json, b"{{"));
            assert_eq!(garbage.verdict, Verdict::Inconclusive);
            assert_eq!(
                guard(j(), &answer(502, json, b"")).verdict,
                Verdict::ServerError
            );
            // A real answer keeps its verdict.
            assert_eq!(guard(j(), &answer(403, json, b"{}")).verdict, verdict);
        }
    }

    #[test]
    fn tally_counts_recovered_and_judged_faults_per_probe() {
        let mut tally = FaultTally::default();
        assert!(tally.section().is_none());
        // A 429 retried into a 200, then judged enforced: recovered.
        let mut ok = answer(200, "application/json", b"{}");
        ok.faults = vec![FaultKind::RateLimited];
        tally.add(1, &ok, Verdict::Enforced);
        // A reset that stayed the answer: judged inconclusive.
        let mut reset = failed("request failed: reset");
        reset.faults = vec![FaultKind::ConnectionReset, FaultKind::ConnectionReset];
        tally.add(2, &reset, Verdict::Inconclusive);
        let section = tally.section().expect("faults were met");
        assert_eq!(section.total, 3);
        let row = |k: FaultKind| section.by_kind.iter().find(|r| r.kind == k).cloned();
        let limited = row(FaultKind::RateLimited).expect("429 row");
        assert_eq!((limited.count, limited.recovered), (1, 1));
        assert!(limited.verdicts.is_empty());
        let reset = row(FaultKind::ConnectionReset).expect("reset row");
        assert_eq!(
            (reset.count, reset.recovered, reset.probes.clone()),
            (2, 1, vec![2])
        );
        assert_eq!(reset.verdicts.get("inconclusive"), Some(&1));
        let twice = merge([&section, &section].into_iter()).expect("merged");
        assert_eq!(twice.total, 6);
        assert_eq!(twice.by_kind[0].probes, vec![2], "IDs are not repeated");
        assert_eq!(twice.by_kind[0].verdicts.get("inconclusive"), Some(&2));
        assert!(merge(std::iter::empty()).is_none());
        let md = markdown(&section);
        assert!(md.contains("| rate-limited | 1 | 1 | - | #1 |"), "{md}");
        assert!(
            md.contains("| connection-reset | 2 | 1 | 1 inconclusive | #2 |"),
            "{md}"
        );
    }
}
