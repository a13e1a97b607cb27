//! `--shard i/N`: which slice of the plan one CI job sends. Probes are dealt out by their
//! operation (round robin over the spec's operations), so an operation's probes, its
//! learned volatile fields and its shrunk 5xx stay in one job; the N slices are disjoint
//! and together are the whole plan. Logins, discovery and canaries run in every job.

use crate::plan::Probe;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based, as CI matrices count.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Whether `probe` belongs to this slice.
    pub fn contains(&self, probe: &Probe) -> bool {
        probe.op % self.count == self.index - 1
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{text}` is not a shard: give i/N with 1 ≤ i ≤ N, e.g. 2/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Attack;
    use crate::request::RequestSpec;
    use crate::spec::Method;

    #[test]
    fn shards_are_disjoint_and_complete() {
        let shards: Vec<Shard> = (1..=3).map(|i| Shard { index: i, count: 3 }).collect();
        for op in 0..20 {
            let probe = Probe::new(
                Attack::NoAuth,
                op,
                0,
                RequestSpec {
                    method: Method::Get,
                    path: "/x".into(),
                    query: vec![],
                    headers: vec![],
                    json: None,
                },
            );
            assert_eq!(shards.iter().filter(|s| s.contains(&probe)).count(), 1);
        }
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/2", "3/2", "1/0", "x", "1-2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
