//! nginx's upstream balancing, as the gateway balances server-side: smooth weighted round
//! robin (`ngx_http_upstream_get_peer`) and least connections
//! (`ngx_http_upstream_get_least_conn_peer`), pure functions over per-peer state that
//! the caller keeps. They never look at the registry or the clock; the gateway resets
//! the state when its upstream list changes, as nginx does on a reload.
//!
//! nginx weights are at least 1; a weight of 0 (which a Dubbo provider may register) is
//! taken as 1 here, so a peer is never starved by arithmetic.

/// The smooth weighted round robin over `weights`, with each peer's current weight in
/// `current` (zeros for a fresh upstream): every peer gains its weight, the largest
/// current weight wins (the first on a tie) and pays the total back.
pub fn round_robin(weights: &[u32], current: &mut [i64]) -> usize {
    assert_eq!(weights.len(), current.len());
    assert!(!weights.is_empty(), "an upstream has at least one peer");
    let mut total = 0i64;
    let mut best = 0;
    for i in 0..weights.len() {
        let weight = weights[i].max(1) as i64;
        current[i] += weight;
        total += weight;
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

/// nginx's `least_conn`: the peer with the fewest active connections for its weight
/// (`conns / weight`, compared by cross-multiplying); among peers tied with the first
/// such, the smooth weighted round robin over the tied peers alone decides.
pub fn least_conn(conns: &[u32], weights: &[u32], current: &mut [i64]) -> usize {
    assert_eq!(conns.len(), weights.len());
    assert_eq!(weights.len(), current.len());
    assert!(!weights.is_empty(), "an upstream has at least one peer");
    let weight = |i: usize| weights[i].max(1) as u64;
    // (conns[a] / weight a) compared with (conns[b] / weight b), without division.
    let ratio =
        |a: usize, b: usize| (conns[a] as u64 * weight(b)).cmp(&(conns[b] as u64 * weight(a)));
    let mut best = 0;
    let mut many = false;
    for i in 1..conns.len() {
        match ratio(i, best) {
            std::cmp::Ordering::Less => {
                best = i;
                many = false;
            }
            std::cmp::Ordering::Equal => many = true,
            std::cmp::Ordering::Greater => {}
        }
    }
    if !many {
        return best;
    }
    let first = best;
    let mut total = 0i64;
    for i in first..conns.len() {
        if ratio(i, first) != std::cmp::Ordering::Equal {
            continue;
        }
        current[i] += weight(i) as i64;
        total += weight(i) as i64;
        if current[i] > current[best] {
            best = i;
        }
    }
    current[best] -= total;
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<usize> {
        let mut current = vec![0; weights.len()];
        (0..n).map(|_| round_robin(weights, &mut current)).collect()
    }

    #[test]
    fn round_robin_is_nginx_smooth_sequence() {
        // nginx's own example (ngx_http_upstream_round_robin.c, weights 5, 1, 1):
        // a a b a c a a.
        assert_eq!(picks(&[5, 1, 1], 7), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(picks(&[1, 1, 1], 4), vec![0, 1, 2, 0]);
        assert_eq!(picks(&[0, 0], 2), vec![0, 1], "weight 0 counts as 1");
    }

    #[test]
    fn least_conn_prefers_the_fewest_connections_per_weight() {
        let mut current = vec![0; 3];
        assert_eq!(least_conn(&[2, 0, 1], &[1, 1, 1], &mut current), 1);
        // 1 conn on weight 3 beats 1 conn on weight 1.
        assert_eq!(least_conn(&[1, 1], &[1, 3], &mut [0, 0]), 1);
        // 3/4 < 1/1.
        assert_eq!(least_conn(&[1, 3], &[1, 4], &mut [0, 0]), 1);
        assert_eq!(
            current,
            vec![0, 0, 0],
            "no tie, no round robin state touched"
        );
    }

    #[test]
    fn least_conn_breaks_ties_by_weighted_round_robin_over_the_tied_only() {
        // Peers 1 and 2 tie at zero connections; peer 0 is busy and never gains weight.
        let mut current = vec![0; 3];
        let chosen: Vec<usize> = (0..4)
            .map(|_| least_conn(&[5, 0, 0], &[1, 1, 2], &mut current))
            .collect();
        assert_eq!(chosen, vec![2, 1, 2, 2]);
        assert_eq!(current[0], 0);
        // All idle and equal: plain round robin.
        let mut current = vec![0; 3];
        let chosen: Vec<usize> = (0..3)
            .map(|_| least_conn(&[0, 0, 0], &[1, 1, 1], &mut current))
            .collect();
        assert_eq!(chosen, vec![0, 1, 2]);
    }
}
