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
//!
//! A payload (a message's canonical bytes, see `canon`) is streamed rather than buffered:
//! its bytes are fed in 8-byte little-endian words as they come, the last one
//! zero-padded, then one word holding its length in bytes. Unlike `bytes`, the length
//! goes last, so a payload can be hashed before its length is known.

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

/// A payload being streamed into a hash (see the module doc); `finish` ends it.
pub struct Payload<'a> {
    hash: &'a mut Hash64,
    word: u64,
    fill: u32,
    len: u64,
}

impl Hash64 {
    /// Starts streaming one payload into this hash.
    #[inline]
    pub fn payload(&mut self) -> Payload<'_> {
        Payload {
            hash: self,
            word: 0,
            fill: 0,
            len: 0,
        }
    }
}

impl Payload<'_> {
    #[inline]
    pub fn byte(&mut self, byte: u8) {
        self.word |= (byte as u64) << (8 * self.fill);
        self.fill += 1;
        self.len += 1;
        if self.fill == 8 {
            self.hash.word(self.word);
            self.word = 0;
            self.fill = 0;
        }
    }

    /// Writes the low `len` bytes of `bytes` (little-endian), `len` at most 8: the same
    /// as writing them one by one, in two steps at most.
    #[inline]
    pub fn write_word(&mut self, bytes: u64, len: u32) {
        debug_assert!(len <= 8);
        debug_assert!(
            len == 8 || bytes >> (8 * len) == 0,
            "only the low bytes are set"
        );
        if len == 0 {
            return;
        }
        self.len += len as u64;
        let room = 8 - self.fill;
        if len < room {
            self.word |= bytes << (8 * self.fill);
            self.fill += len;
            return;
        }
        // Fill this word, hash it, and start the next with what is left.
        self.word |= bytes.checked_shl(8 * self.fill).unwrap_or(0);
        self.hash.word(self.word);
        let used = room;
        self.fill = len - used;
        self.word = if used == 8 { 0 } else { bytes >> (8 * used) };
        if self.fill == 0 {
            self.word = 0;
        }
    }

    #[inline]
    pub fn write(&mut self, bytes: &[u8]) {
        if self.fill != 0 || bytes.len() < 8 {
            for byte in bytes {
                self.byte(*byte);
            }
            return;
        }
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.hash.word(u64::from_le_bytes(
                chunk.try_into().expect("chunks of eight"),
            ));
        }
        self.len += (bytes.len() - chunks.remainder().len()) as u64;
        for byte in chunks.remainder() {
            self.byte(*byte);
        }
    }

    #[inline]
    pub fn finish(self) {
        if self.fill != 0 {
            self.hash.word(self.word);
        }
        self.hash.word(self.len);
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
    fn payloads_stream_in_any_pieces_and_count_their_length() {
        let bytes: Vec<u8> = (0..40u8).collect();
        let whole = {
            let mut h = Hash64::new();
            let mut payload = h.payload();
            payload.write(&bytes);
            payload.finish();
            h.finish()
        };
        for split in [0, 1, 7, 8, 9, 23, 40] {
            let mut h = Hash64::new();
            let mut payload = h.payload();
            payload.write(&bytes[..split]);
            for chunk in bytes[split..].chunks(3) {
                let word = chunk
                    .iter()
                    .enumerate()
                    .fold(0u64, |w, (i, b)| w | (*b as u64) << (8 * i));
                payload.write_word(word, chunk.len() as u32);
            }
            payload.finish();
            assert_eq!(h.finish(), whole, "words after {split}");
        }
        for split in [0, 1, 7, 8, 9, 23, 40] {
            let mut h = Hash64::new();
            let mut payload = h.payload();
            payload.write(&bytes[..split]);
            for byte in &bytes[split..] {
                payload.byte(*byte);
            }
            payload.finish();
            assert_eq!(h.finish(), whole, "split at {split}");
        }
        let mut zero_padded = Hash64::new();
        let mut payload = zero_padded.payload();
        payload.write(&[1, 0]);
        payload.finish();
        let mut short = Hash64::new();
        let mut payload = short.payload();
        payload.write(&[1]);
        payload.finish();
        assert_ne!(zero_padded.finish(), short.finish());
    }

    #[test]
    fn padding_does_not_collide_with_zero_bytes() {
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"));
        assert_ne!(hash_bytes(b""), hash_bytes(b"\0"));
    }
}
