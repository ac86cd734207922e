//! A node's two clocks: the wall clock (`Ctx::now_ns`), which clock-skew faults move by an
//! offset and a drift, and the monotonic clock (`Ctx::monotonic_ns`), which runs at the
//! same drifted rate but never jumps. Integer arithmetic only, so every target agrees.
//! This module knows nothing of nodes, events or faults beyond the numbers it is given.

/// `wall = anchor_wall + elapsed * (1e6 + drift_ppm) / 1e6`, and the same from
/// `anchor_monotonic` for the monotonic clock, where `elapsed = now - anchor`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    anchor_ns: u64,
    anchor_wall_ns: u64,
    anchor_monotonic_ns: u64,
    drift_ppm: i32,
}

impl Clock {
    #[inline]
    fn advance(&self, from_ns: u64, now_ns: u64) -> u64 {
        if self.drift_ppm == 0 {
            return from_ns + (now_ns - self.anchor_ns);
        }
        let elapsed = (now_ns - self.anchor_ns) as i128;
        let scaled = elapsed * (1_000_000 + self.drift_ppm as i128) / 1_000_000;
        (from_ns as i128 + scaled).max(0) as u64
    }

    /// The wall clock at virtual time `now_ns`.
    #[inline]
    pub fn wall_ns(&self, now_ns: u64) -> u64 {
        debug_assert!(now_ns >= self.anchor_ns);
        self.advance(self.anchor_wall_ns, now_ns)
    }

    /// The monotonic clock at virtual time `now_ns`.
    #[inline]
    pub fn monotonic_ns(&self, now_ns: u64) -> u64 {
        debug_assert!(now_ns >= self.anchor_ns);
        self.advance(self.anchor_monotonic_ns, now_ns)
    }

    /// Real nanoseconds until this clock has advanced `local_delay_ns`.
    pub fn real_delay_ns(&self, local_delay_ns: u64) -> u64 {
        if self.drift_ppm == 0 {
            return local_delay_ns;
        }
        let rate = (1_000_000 + self.drift_ppm as i128) as u128;
        (local_delay_ns as u128 * 1_000_000).div_ceil(rate) as u64
    }

    /// A clock-skew fault at `now_ns`: the wall clock jumps by `offset_ns` and both
    /// clocks run at `drift_ppm` from here. Zero offset and zero drift undo the skew: the
    /// wall clock goes back to true time. The monotonic clock never jumps.
    pub fn skew(&mut self, now_ns: u64, offset_ns: i64, drift_ppm: i32) {
        assert!(
            drift_ppm > -1_000_000,
            "a clock never stops or runs backwards"
        );
        let wall = if offset_ns == 0 && drift_ppm == 0 {
            now_ns as i128
        } else {
            self.wall_ns(now_ns) as i128 + offset_ns as i128
        };
        let monotonic = self.monotonic_ns(now_ns);
        *self = Clock {
            anchor_ns: now_ns,
            anchor_wall_ns: wall.max(0) as u64,
            anchor_monotonic_ns: monotonic,
            drift_ppm,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_moves_the_wall_clock_but_not_the_monotonic_one() {
        let mut clock = Clock::default();
        clock.skew(1_000, 2_000_000_000, 0);
        assert_eq!(clock.wall_ns(1_000), 2_000_001_000);
        assert_eq!(clock.monotonic_ns(1_000), 1_000);
        clock.skew(5_000, -3_000_000_000, 0);
        assert_eq!(clock.wall_ns(5_000), 0, "a wall clock clamps at zero");
        assert_eq!(clock.monotonic_ns(6_000), 6_000);
    }

    #[test]
    fn drift_changes_both_rates_and_undo_restores_true_time() {
        let mut clock = Clock::default();
        clock.skew(0, 0, 500_000);
        assert_eq!(clock.wall_ns(1_000), 1_500);
        assert_eq!(clock.monotonic_ns(1_000), 1_500);
        assert_eq!(clock.real_delay_ns(1_500), 1_000);
        clock.skew(1_000, 0, 0);
        assert_eq!(clock.wall_ns(2_000), 2_000);
        assert_eq!(
            clock.monotonic_ns(2_000),
            2_500,
            "monotonic never jumps back"
        );
    }
}
