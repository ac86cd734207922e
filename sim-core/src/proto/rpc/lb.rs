//! Apache Dubbo's load-balancing choices as pure functions (DESIGN.md's library
//! contract): no clock and no random source of their own. The caller passes virtual
//! time, weights and a `draw(n)` that returns a uniform value in `[0, n)`; each function
//! calls `draw` at most once. Indexes refer to the slice passed in, in its order (which
//! the caller must keep stable: every choice here depends on it).
//!
//! The rules are Dubbo 3.3's, bit for bit: `AbstractLoadBalance` (`getWeight`,
//! `calculateWarmupWeight` in binary32), `RandomLoadBalance`, `RoundRobinLoadBalance`
//! (smooth weighted round robin), `LeastActiveLoadBalance`, `ShortestResponseLoadBalance`
//! and `ConsistentHashLoadBalance` (a ketama ring over MD5). Where Dubbo would throw
//! (a ring of fewer than 4 virtual nodes, an unparseable `hash.arguments`), this module
//! has a rule of its own, documented at the function. It never keeps time or draws.

use std::collections::BTreeMap;

use md5::{Digest, Md5};

/// How long a round-robin entry may go unseen before it is recycled (Dubbo's
/// `RECYCLE_PERIOD`).
pub const RECYCLE_MS: u64 = 60_000;

/// A provider's weight `uptime_ms` into a warm-up of `warmup_ms`, as Dubbo's `getWeight`
/// gates `calculateWarmupWeight`: a weight of 0 stays 0; a negative uptime (the
/// provider's clock ahead) gives 1; an uptime of 0, or at or past the warm-up, keeps the
/// weight; in between, `(int)(uptime / ((float) warmup / weight))` in binary32,
/// truncated, clamped to `[1, weight]`. (Dubbo's own test calls the inner function with
/// uptime 0 and expects 1; through this gate, as in a real call, 0 keeps the weight.)
pub fn warmup_weight(uptime_ms: i64, warmup_ms: u32, weight: u32) -> u32 {
    if weight == 0 {
        return 0;
    }
    if uptime_ms < 0 {
        return 1;
    }
    if uptime_ms == 0 || uptime_ms >= warmup_ms as i64 {
        return weight;
    }
    // Two binary32 divisions in Java's order; `as i64` truncates toward zero and
    // saturates, as Java's narrowing does.
    let per_unit = warmup_ms as f32 / weight as f32;
    let warmed = (uptime_ms as f32 / per_unit) as i64;
    warmed.clamp(1, weight as i64) as u32
}

/// The first `picks` choices of a fresh smooth weighted round robin over `weights` (all
/// at the same instant): what `RoundRobin::select` returns call after call.
pub fn smooth_round_robin(weights: &[u32], picks: usize) -> Vec<usize> {
    let names: Vec<String> = (0..weights.len()).map(|i| format!("p{i}")).collect();
    let providers: Vec<(&str, u32)> = names
        .iter()
        .map(String::as_str)
        .zip(weights.iter().copied())
        .collect();
    let mut round_robin = RoundRobin::new();
    (0..picks)
        .map_while(|_| round_robin.select(0, &providers))
        .collect()
}

#[derive(Clone, Debug)]
struct WeightedEntry {
    weight: u32,
    current: i64,
    last_update_ms: u64,
}

/// Smooth weighted round robin for one service method (Dubbo keeps one per method), as
/// `RoundRobinLoadBalance`: each call adds every provider's weight to its `current`,
/// picks the highest (the first in the list on a tie) and takes the total off it. A
/// provider whose weight changed (a warm-up step, a new configuration) starts again
/// from 0. One provider is answered without touching the state. Entries of providers
/// unseen for more than `RECYCLE_MS` are dropped, but only on a call whose provider
/// count differs from the number of entries.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    entries: BTreeMap<String, WeightedEntry>,
}

impl RoundRobin {
    pub fn new() -> Self {
        Self::default()
    }

    /// The chosen index into `providers` (identity, weight), or None when there is none.
    pub fn select(&mut self, now_ms: u64, providers: &[(&str, u32)]) -> Option<usize> {
        match providers.len() {
            0 => return None,
            1 => return Some(0),
            _ => {}
        }
        let mut total: i64 = 0;
        let mut best: Option<(usize, i64)> = None;
        for (index, (identity, weight)) in providers.iter().enumerate() {
            let entry = self
                .entries
                .entry(identity.to_string())
                .or_insert(WeightedEntry {
                    weight: *weight,
                    current: 0,
                    last_update_ms: now_ms,
                });
            if entry.weight != *weight {
                entry.weight = *weight;
                entry.current = 0;
            }
            entry.current += *weight as i64;
            entry.last_update_ms = now_ms;
            if best.is_none_or(|(_, max)| entry.current > max) {
                best = Some((index, entry.current));
            }
            total += *weight as i64;
        }
        if providers.len() != self.entries.len() {
            self.entries
                .retain(|_, entry| now_ms.saturating_sub(entry.last_update_ms) <= RECYCLE_MS);
        }
        let (index, _) = best.expect("at least two providers");
        let chosen = self
            .entries
            .get_mut(providers[index].0)
            .expect("refreshed above");
        chosen.current -= total;
        Some(index)
    }

    /// How many providers the state remembers (for tests and inspectors).
    pub fn remembered(&self) -> usize {
        self.entries.len()
    }
}

/// A ketama ring of provider addresses, as Dubbo's `ConsistentHashSelector`: for each
/// address, `hash_nodes / 4` MD5 digests of the address followed by the decimal `i`,
/// four little-endian u32 points from each (a later address takes a point two share).
/// Weights and warm-up play no part. Dubbo's ring is empty below 4 nodes (and the call
/// fails); here it is built with 4, one digest per address.
#[derive(Clone, Debug)]
pub struct ConsistentHashRing {
    points: BTreeMap<u32, usize>,
}

impl ConsistentHashRing {
    /// `addresses` must not be empty (`host:port`, as Dubbo's `URL.getAddress`).
    pub fn new(addresses: &[&str], hash_nodes: u32) -> Self {
        assert!(!addresses.is_empty(), "a ring needs an address");
        let digests = (hash_nodes / 4).max(1);
        let mut points = BTreeMap::new();
        for (index, address) in addresses.iter().enumerate() {
            for i in 0..digests {
                let digest = md5(format!("{address}{i}").as_bytes());
                for h in 0..4 {
                    points.insert(point(&digest, h), index);
                }
            }
        }
        Self { points }
    }

    /// The address index a key goes to: the first point at or after the little-endian
    /// u32 of the key's MD5 (its first four bytes), wrapping to the lowest.
    pub fn select(&self, key: &str) -> usize {
        let at = point(&md5(key.as_bytes()), 0);
        let (_, index) = self
            .points
            .range(at..)
            .next()
            .or_else(|| self.points.iter().next())
            .expect("a ring has points");
        *index
    }
}

fn md5(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// Point `h` (0..4) of a digest: the little-endian u32 of bytes `4h..4h + 4`.
fn point(digest: &[u8; 16], h: usize) -> u32 {
    u32::from_le_bytes([
        digest[4 * h],
        digest[4 * h + 1],
        digest[4 * h + 2],
        digest[4 * h + 3],
    ])
}

/// The consistent-hash key of a call: the arguments `hash_arguments` names (indexes
/// separated by commas, Dubbo's `hash.arguments`, default `"0"`), concatenated with no
/// separator, in the order named (an index may repeat). Indexes out of range are
/// skipped, as Dubbo skips them; a token that is not an index (where Dubbo's parse would
/// throw) is skipped too.
pub fn hash_key(args: &[&str], hash_arguments: &str) -> String {
    hash_arguments
        .split(',')
        .map(str::trim)
        .filter_map(|token| token.parse::<usize>().ok())
        .filter_map(|index| args.get(index).copied())
        .collect()
}

/// Weighted random, as `RandomLoadBalance` with weights (a caller whose first provider
/// has neither a weight nor a start time draws uniformly itself, as Dubbo does): when
/// the weights differ and sum above 0, one draw over their sum and the first index whose
/// running sum exceeds it (a weight of 0 is never chosen); otherwise one draw over the
/// count. One provider is chosen without a draw. `weights` must not be empty.
pub fn random(weights: &[u32], draw: &mut dyn FnMut(u32) -> u32) -> usize {
    assert!(!weights.is_empty(), "a choice needs a provider");
    if weights.len() == 1 {
        return 0;
    }
    let candidates: Vec<usize> = (0..weights.len()).collect();
    weighted_among(&candidates, weights, draw)
}

/// Least active, as `LeastActiveLoadBalance`: among the providers with the fewest calls
/// in flight (in list order), the only one without a draw; else weighted random among
/// them (weights compared with the first candidate's), or one draw over their count
/// when their weights are equal. `actives` and `weights` have one entry per provider.
pub fn least_active(actives: &[u32], weights: &[u32], draw: &mut dyn FnMut(u32) -> u32) -> usize {
    let estimates: Vec<u64> = actives.iter().map(|a| *a as u64).collect();
    least_of(&estimates, weights, draw)
}

/// Shortest response, as `ShortestResponseLoadBalance`: `least_active` over each
/// provider's estimated response (its average successful call time in the current
/// window times its calls in flight plus one; 0 for a provider with no success yet).
pub fn shortest_response(
    estimates_ns: &[u64],
    weights: &[u32],
    draw: &mut dyn FnMut(u32) -> u32,
) -> usize {
    least_of(estimates_ns, weights, draw)
}

/// The estimate `shortest_response` compares: average elapsed time of the window's
/// successful calls times (calls in flight + 1), in integer arithmetic as Dubbo.
pub fn estimated_response(succeeded: u64, succeeded_elapsed_ns: u64, active: u32) -> u64 {
    if succeeded == 0 {
        return 0;
    }
    (succeeded_elapsed_ns / succeeded).saturating_mul(active as u64 + 1)
}

fn least_of(values: &[u64], weights: &[u32], draw: &mut dyn FnMut(u32) -> u32) -> usize {
    assert!(!values.is_empty(), "a choice needs a provider");
    assert_eq!(values.len(), weights.len(), "one weight per provider");
    let least = *values.iter().min().expect("not empty");
    let candidates: Vec<usize> = (0..values.len()).filter(|i| values[*i] == least).collect();
    if candidates.len() == 1 {
        return candidates[0];
    }
    weighted_among(&candidates, weights, draw)
}

/// Dubbo's shared rule among candidates: one draw over their weight sum when their
/// weights differ (from the first candidate's) and the sum is above 0, the first
/// candidate whose running sum exceeds the draw; else one draw over their count.
/// Sums saturate at `u32::MAX` (Dubbo's int would wrap).
fn weighted_among(
    candidates: &[usize],
    weights: &[u32],
    draw: &mut dyn FnMut(u32) -> u32,
) -> usize {
    let first = weights[candidates[0]];
    let same = candidates.iter().all(|i| weights[*i] == first);
    let total = candidates
        .iter()
        .fold(0u32, |sum, i| sum.saturating_add(weights[*i]));
    if !same && total > 0 {
        let offset = draw(total);
        debug_assert!(offset < total, "draw(n) is below n");
        let mut running = 0u32;
        for index in candidates {
            running = running.saturating_add(weights[*index]);
            if offset < running {
                return *index;
            }
        }
        return *candidates.last().expect("not empty");
    }
    let pick = draw(candidates.len() as u32) as usize;
    debug_assert!(pick < candidates.len(), "draw(n) is below n");
    candidates[pick.min(candidates.len() - 1)]
}

#[cfg(test)]
mod tests;
