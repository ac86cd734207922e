//! `Chunked`: an append-only list whose copies share what they hold in common. A run's
//! history and metrics only grow, and the browser keeps dozens of copies of a run (its
//! checkpoints); as plain vectors each copy repeated every sample before it, most of a
//! late checkpoint's megabytes and of the time a seek spent copying one. Here full
//! chunks are frozen behind reference counts, so a copy costs one pointer per chunk plus
//! the unfrozen tail. It never removes or changes an element once pushed.

use std::sync::Arc;

/// Elements per frozen chunk: big enough that a copy's pointers are few, small enough
/// that the tail it copies in full stays small.
const CHUNK: usize = 1_024;

#[derive(Clone, Debug, PartialEq)]
pub struct Chunked<T> {
    frozen: Vec<Arc<[T]>>,
    tail: Vec<T>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked {
            frozen: Vec::new(),
            tail: Vec::new(),
        }
    }
}

impl<T> Chunked<T> {
    pub fn push(&mut self, value: T) {
        self.tail.push(value);
        if self.tail.len() == CHUNK {
            let full = std::mem::replace(&mut self.tail, Vec::with_capacity(CHUNK));
            self.frozen.push(full.into());
        }
        debug_assert!(self.tail.len() < CHUNK);
    }

    pub fn len(&self) -> usize {
        self.frozen.len() * CHUNK + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, index: usize) -> Option<&T> {
        match self.frozen.get(index / CHUNK) {
            Some(chunk) => chunk.get(index % CHUNK),
            None => self.tail.get(index - self.frozen.len() * CHUNK),
        }
    }

    pub fn last(&self) -> Option<&T> {
        self.tail
            .last()
            .or_else(|| self.frozen.last().and_then(|chunk| chunk.last()))
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + Clone {
        self.frozen
            .iter()
            .flat_map(|chunk| chunk.iter())
            .chain(self.tail.iter())
    }

    /// The index of the first element `pred` is false for, where it is true for a prefix
    /// and false after (`slice::partition_point`): a binary search of a sorted list.
    pub fn partition_point(&self, pred: impl Fn(&T) -> bool) -> usize {
        // Frozen chunks are full, so each has a last element.
        let chunk = self
            .frozen
            .partition_point(|chunk| chunk.last().is_some_and(&pred));
        match self.frozen.get(chunk) {
            Some(inside) => chunk * CHUNK + inside.partition_point(&pred),
            None => self.frozen.len() * CHUNK + self.tail.partition_point(&pred),
        }
    }

    /// The elements from `start` on, in order.
    pub fn iter_from(&self, start: usize) -> impl Iterator<Item = &T> {
        let (chunk, offset) = (start / CHUNK, start % CHUNK);
        let frozen = self.frozen.get(chunk..).unwrap_or_default();
        let skip_tail = start.saturating_sub(self.frozen.len() * CHUNK);
        let first = frozen.first().map(|c| &c[offset.min(c.len())..]);
        let rest = frozen.get(1..).unwrap_or_default();
        first
            .into_iter()
            .flatten()
            .chain(rest.iter().flat_map(|c| c.iter()))
            .chain(self.tail.get(skip_tail..).unwrap_or_default())
    }
}

impl<T: Clone> Chunked<T> {
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_as_the_vector_it_was_pushed_as_and_copies_share_frozen_chunks() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let mut log = Chunked::default();
            let plain: Vec<usize> = (0..n).collect();
            for &value in &plain {
                log.push(value);
            }
            assert_eq!(log.len(), n);
            assert_eq!(log.is_empty(), n == 0);
            assert_eq!(log.to_vec(), plain);
            assert_eq!(log.last(), plain.last());
            assert_eq!(log.iter().next_back(), plain.last());
            for index in [0, 1, CHUNK - 1, CHUNK, n.saturating_sub(1), n, n + 5] {
                assert_eq!(log.get(index), plain.get(index), "n {n} index {index}");
                let from: Vec<usize> = log.iter_from(index).copied().collect();
                assert_eq!(
                    from,
                    plain.get(index..).unwrap_or_default(),
                    "n {n} from {index}"
                );
            }
            let mut copy = log.clone();
            copy.push(n);
            assert_eq!(log.len(), n, "a copy's pushes are its own");
            assert_eq!(copy.len(), n + 1);
            for (a, b) in log.frozen.iter().zip(&copy.frozen) {
                assert!(Arc::ptr_eq(a, b), "frozen chunks are shared, not copied");
            }
        }
    }

    #[test]
    fn a_binary_search_finds_what_the_vectors_does() {
        for n in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17] {
            let mut log = Chunked::default();
            let plain: Vec<usize> = (0..n).map(|i| 3 * i).collect();
            for &value in &plain {
                log.push(value);
            }
            for probe in [0, 1, 2, 3, 3 * CHUNK, 3 * CHUNK + 1, 3 * n, 3 * n + 5] {
                assert_eq!(
                    log.partition_point(|v| *v < probe),
                    plain.partition_point(|v| *v < probe),
                    "{probe} in {n}"
                );
            }
        }
    }
}
