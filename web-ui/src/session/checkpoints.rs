//! Checkpoints of the first pass: run snapshots at increasing cursors, bounded in count
//! and spread over the whole run, so a seek restores the nearest and replays at most one
//! interval. Generic over what is kept, so it is tested with plain numbers; it never
//! takes a snapshot itself.

/// Values (run snapshots) at increasing cursors, at most `max` of them at least
/// `interval` apart: when full, the interval doubles and every other one goes, so they
/// stay spread over the whole run.
pub(super) struct Checkpoints<T> {
    list: Vec<(u64, T)>,
    interval: u64,
    max: usize,
}

impl<T> Checkpoints<T> {
    /// Starts with the value at cursor 0, which is never dropped.
    pub(super) fn new(start: T, interval: u64, max: usize) -> Self {
        assert!(interval > 0 && max >= 2);
        Self {
            list: vec![(0, start)],
            interval,
            max,
        }
    }

    pub(super) fn due(&self, cursor: u64) -> bool {
        let last = self.list.last().expect("never empty").0;
        cursor >= last + self.interval
    }

    pub(super) fn push(&mut self, cursor: u64, value: T) {
        debug_assert!(self.due(cursor));
        if self.list.len() == self.max {
            self.interval *= 2;
            let mut index = 0;
            self.list.retain(|_| {
                index += 1;
                index % 2 == 1
            });
        }
        if self.due(cursor) {
            self.list.push((cursor, value));
        }
        assert!(self.list.len() <= self.max);
    }

    /// The last checkpoint at or before `cursor`.
    pub(super) fn at_or_before(&self, cursor: u64) -> (u64, &T) {
        let index = self.list.partition_point(|(at, _)| *at <= cursor);
        let (at, value) = &self.list[index - 1];
        (*at, value)
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.list.len()
    }

    #[cfg(test)]
    pub(super) fn interval(&self) -> u64 {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoints_stay_bounded_and_spread_over_the_whole_run() {
        let mut checkpoints = Checkpoints::new(0, 10, 4);
        for cursor in 1..=1_000 {
            if checkpoints.due(cursor) {
                checkpoints.push(cursor, cursor);
            }
            assert!(checkpoints.len() <= 4);
        }
        // Each checkpoint holds its cursor, and none is more than an interval from the next.
        let cursors: Vec<u64> = checkpoints
            .list
            .iter()
            .map(|(at, v)| {
                assert_eq!(at, v);
                *at
            })
            .collect();
        assert_eq!(cursors[0], 0, "the start stays");
        assert!(cursors
            .windows(2)
            .all(|w| w[1] - w[0] <= checkpoints.interval()));
        assert!(1_000 - cursors[3] <= checkpoints.interval(), "{cursors:?}");
        assert_eq!(checkpoints.interval(), 320);
        assert_eq!(checkpoints.at_or_before(700), (640, &640));
        assert_eq!(checkpoints.at_or_before(5), (0, &0));
    }
}
