//! The run's random streams: every draw in a run comes from a ChaCha8 stream named by
//! (run seed, stream id), so one part of a run never shifts another part's numbers.
//!
//! Stream ids: node `i` uses `i`, its disk `2^32 + i`, the nemesis `2^33 + 1`, and the
//! directed link `from -> to` its own stream above `2^40`. A stream per link is what
//! makes runs shrinkable: removing a fault or a message changes the fates on the links it
//! touched and leaves every other link's fates alone. This module only names streams; it
//! never decides what a draw means.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::ids::NodeId;

pub const STREAM_DISK_BASE: u64 = 1 << 32;
pub const STREAM_NEMESIS: u64 = (2 << 32) + 1;
const STREAM_LINK_BASE: u64 = 1 << 40;
/// Node ids a link stream id can hold (the engine's `NODES_MAX` is below it).
const LINK_NODE_BITS: u32 = 20;

/// A random stream derived from the run seed; the same (seed, stream) always gives the
/// same numbers on every target.
pub fn stream(seed: u64, stream_id: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream_id);
    rng
}

/// The stream id of the directed link `from -> to`.
pub fn link_stream_id(from: NodeId, to: NodeId) -> u64 {
    assert!(from < 1 << LINK_NODE_BITS && to < 1 << LINK_NODE_BITS);
    STREAM_LINK_BASE + ((from as u64) << LINK_NODE_BITS) + to as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn link_streams_are_distinct_from_each_other_and_from_the_rest() {
        let ids = [
            link_stream_id(0, 1),
            link_stream_id(1, 0),
            link_stream_id(99_999, 99_998),
        ];
        assert!(ids[0] != ids[1] && ids[1] != ids[2]);
        for id in ids {
            assert!(id > STREAM_NEMESIS, "above every other stream");
        }
        let mut a = stream(7, ids[0]);
        let mut b = stream(7, ids[1]);
        assert_ne!(a.random::<u64>(), b.random::<u64>());
    }
}
