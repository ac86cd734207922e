//! faultline-hash64: the fixed, documented hash behind trace hashes and record checksums.
//!
//! It must give the same answer on every target (native and wasm32) and in every release,
//! so it is defined here in full rather than borrowed from a `Hasher` whose output may
//! change. It is not cryptographic; it only has to make two different runs differ.
//!
//! Definition: state `h` starts at `SEED`. Each 64-bit word `w` (little-endian) is mixed
//! with `h = (h.rotate_left(23) ^ w).wrapping_mul(K)`. A byte string is fed as its length
//! in bytes (one word) followed by its bytes in 8-byte little-endian words, the last one
//! zero-padded. `finish` returns `h ^ (h >> 29)` multiplied by `K` and xor-shifted by 32.
//! A hash is printed as 16 lower-case hex digits.

const SEED: u64 = 0x6661_756c_746c_696e; // "faultlin"
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Streaming faultline-hash64 state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hash64 {
    state: u64,
}

impl Default for Hash64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Hash64 {
    pub const fn new() -> Self {
        Self { state: SEED }
    }

    #[inline]
    pub fn word(&mut self, w: u64) {
        self.state = (self.state.rotate_left(23) ^ w).wrapping_mul(K);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(
                chunk.try_into().expect("chunks of eight"),
            ));
        }
        // Assembled byte by byte: a variable-length copy would cost a libc call per event.
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let word = rest
                .iter()
                .enumerate()
                .fold(0u64, |w, (i, b)| w | (*b as u64) << (8 * i));
            self.word(word);
        }
    }

    pub fn finish(&self) -> u64 {
        let mut h = self.state;
        h ^= h >> 29;
        h = h.wrapping_mul(K);
        h ^ (h >> 32)
    }
}

/// The hash of one byte string on its own.
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = Hash64::new();
    h.bytes(bytes);
    h.finish()
}

/// Renders a hash the way every output of faultline shows it.
pub fn to_hex(hash: u64) -> String {
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_values_never_change() {
        // Golden values: changing the function silently would invalidate every saved
        // trace and every hash in the wasm golden file.
        assert_eq!(to_hex(hash_bytes(b"")), "997a94fbaaaf25b4");
        assert_eq!(to_hex(hash_bytes(b"faultline")), "bbdde9cf27e4067f");
    }

    #[test]
    fn padding_does_not_collide_with_zero_bytes() {
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }
}
