//! Per-node durable storage: named files, writes that reach the platter only when synced.
//!
//! A node reads back what it wrote at once (the page cache), but a crash keeps only what
//! was synced. Disk faults model the storage lies real systems meet: a torn write (a crash
//! keeps a random prefix of the unsynced appends) and a lost sync (a sync that reports
//! success but persists nothing). Fault randomness comes from the disk's own stream, so it
//! never perturbs the node's. This module never sees messages, time or other nodes.
//!
//! Records: `append_record` frames a serde value as `len u32 | checksum u32 | postcard
//! bytes`; `read_records` returns the intact prefix and says whether a torn tail followed.

use std::collections::BTreeMap;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest file a node may hold; a protocol that outgrows it has a bug (no compaction).
pub const FILE_SIZE_BYTES_MAX: u64 = 256 * 1024 * 1024;
/// How many files one disk may hold.
pub const FILES_MAX: u32 = 4096;
const RECORD_HEADER_BYTES: usize = 8;

/// A file as the node reads it (`current`) and what a crash would leave of it. Only
/// appends since the last sync leave the durable contents a prefix of `current`, so they
/// are kept as a length, not a second copy: a sync costs what was appended, not the
/// file, and a checkpoint of a run copies a write-ahead log once, not twice.
#[derive(Clone, Debug, Default)]
struct File {
    current: Vec<u8>,
    /// How much of `current` is durable, while `replaced` is `None`.
    durable_len: usize,
    /// The durable contents, kept whole once `current` was replaced or removed since the
    /// last sync: a crash keeps them (the replace acts like write-to-temp-and-rename).
    replaced: Option<Vec<u8>>,
}

impl File {
    /// Sets the durable contents aside before `current` changes other than by appending.
    fn set_aside_durable(&mut self) {
        if self.replaced.is_none() {
            let mut durable = std::mem::take(&mut self.current);
            durable.truncate(self.durable_len);
            self.replaced = Some(durable);
        }
    }
}

/// Probabilities (parts per million) of each storage fault on one disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    pub torn_write_ppm: u32,
    pub lost_sync_ppm: u32,
}

/// One node's disk. It outlives the node's crashes; the engine calls `crash`.
#[derive(Clone, Debug)]
pub struct Disk {
    files: BTreeMap<String, File>,
    faults: DiskFaults,
    rng: ChaCha8Rng,
    syncs: u64,
    /// Where the handler stands in its intents when it reaches for the disk (set by
    /// `Ctx::disk`), so a journal can place disk operations among sends.
    mark: u32,
    /// Operations with their marks, kept only when the testing harness asks.
    journal: Option<Vec<(u32, String)>>,
}

impl Disk {
    pub fn new(rng: ChaCha8Rng) -> Self {
        Self {
            files: BTreeMap::new(),
            faults: DiskFaults::default(),
            rng,
            syncs: 0,
            mark: 0,
            journal: None,
        }
    }

    /// Starts keeping a journal of operations (the testing harness shows them).
    pub fn keep_journal(&mut self) {
        self.journal.get_or_insert_with(Vec::new);
    }

    /// The operations since the last call, each with the mark current when it happened.
    pub fn take_journal(&mut self) -> Vec<(u32, String)> {
        self.journal
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Records where the caller stands (see `mark`); cheap enough for every access.
    #[inline]
    pub fn set_mark(&mut self, mark: u32) {
        self.mark = mark;
    }

    fn note(&mut self, op: impl FnOnce() -> String) {
        if let Some(journal) = &mut self.journal {
            journal.push((self.mark, op()));
        }
    }

    pub fn set_faults(&mut self, faults: DiskFaults) {
        assert!(faults.torn_write_ppm <= 1_000_000);
        assert!(faults.lost_sync_ppm <= 1_000_000);
        self.faults = faults;
    }

    /// Appends to `name`, creating it if needed. Not durable until `sync`.
    pub fn append(&mut self, name: &str, bytes: &[u8]) {
        let file = self.file_mut(name);
        assert!(
            file.current.len() as u64 + bytes.len() as u64 <= FILE_SIZE_BYTES_MAX,
            "file {name} outgrows FILE_SIZE_BYTES_MAX"
        );
        file.current.extend_from_slice(bytes);
        self.note(|| format!("append {name} {} bytes", bytes.len()));
    }

    /// Replaces the contents of `name`. Not durable until `sync`; until then a crash
    /// keeps the previous contents whole.
    pub fn write(&mut self, name: &str, bytes: &[u8]) {
        assert!(
            bytes.len() as u64 <= FILE_SIZE_BYTES_MAX,
            "file {name} too large"
        );
        let file = self.file_mut(name);
        file.set_aside_durable();
        file.current.clear();
        file.current.extend_from_slice(bytes);
        self.note(|| format!("write {name} {} bytes", bytes.len()));
    }

    /// Removes `name` (durable at the next sync, like an unlink before fsync of the dir).
    pub fn remove(&mut self, name: &str) {
        if let Some(file) = self.files.get_mut(name) {
            file.set_aside_durable();
            file.current.clear();
        }
        self.note(|| format!("remove {name}"));
    }

    /// What the node would read now, synced or not. A missing file reads as empty.
    pub fn read(&self, name: &str) -> &[u8] {
        self.files
            .get(name)
            .map(|file| file.current.as_slice())
            .unwrap_or(&[])
    }

    /// Makes every file durable, unless a lost-sync fault swallows it.
    pub fn sync(&mut self) {
        self.syncs += 1;
        self.note(|| "sync".to_string());
        if self.faults.lost_sync_ppm > 0 && self.draw_ppm(self.faults.lost_sync_ppm) {
            return;
        }
        for file in self.files.values_mut() {
            file.durable_len = file.current.len();
            file.replaced = None;
        }
    }

    /// How many times `sync` was called, for statistics and tests.
    pub fn syncs(&self) -> u64 {
        self.syncs
    }

    /// The node crashed: everything unsynced is gone, except what a torn write keeps.
    pub fn crash(&mut self) {
        let torn_ppm = self.faults.torn_write_ppm;
        let mut files = std::mem::take(&mut self.files);
        for file in files.values_mut() {
            if let Some(durable) = file.replaced.take() {
                file.current = durable;
            } else {
                debug_assert!(file.durable_len <= file.current.len());
                let unsynced = file.current.len() - file.durable_len;
                let kept = if unsynced > 0 && torn_ppm > 0 && self.draw_ppm(torn_ppm) {
                    self.rng.random_range(0..unsynced)
                } else {
                    0
                };
                file.current.truncate(file.durable_len + kept);
            }
            file.durable_len = file.current.len();
        }
        self.files = files;
        debug_assert!(self
            .files
            .values()
            .all(|f| f.replaced.is_none() && f.durable_len == f.current.len()));
    }

    /// Appends one framed record (see the module doc).
    pub fn append_record<T: Serialize>(&mut self, name: &str, record: &T) {
        self.append(name, &frame_record(record));
    }

    /// Reads back every intact record of `name`, and whether a torn or corrupt tail
    /// followed them (a crash during append; the caller should truncate it away).
    pub fn read_records<T: DeserializeOwned>(&self, name: &str) -> (Vec<T>, bool) {
        let mut bytes = self.read(name);
        let mut records = Vec::new();
        while !bytes.is_empty() {
            let Some(record) = decode_frame(bytes) else {
                return (records, true);
            };
            let (value, frame_len) = record;
            records.push(value);
            bytes = &bytes[frame_len..];
        }
        (records, false)
    }

    /// Cuts a torn or corrupt tail off a record file, so later appends start on a record
    /// boundary. Returns whether anything was cut. Durable at the next sync.
    pub fn truncate_torn_records(&mut self, name: &str) -> bool {
        let bytes = self.read(name);
        let mut intact = 0;
        while let Some(frame_len) = intact_frame_len(&bytes[intact..]) {
            intact += frame_len;
        }
        if intact == bytes.len() {
            return false;
        }
        let kept = bytes[..intact].to_vec();
        self.write(name, &kept);
        true
    }

    fn file_mut(&mut self, name: &str) -> &mut File {
        if !self.files.contains_key(name) {
            assert!(
                (self.files.len() as u32) < FILES_MAX,
                "disk outgrows FILES_MAX"
            );
            self.files.insert(name.to_string(), File::default());
        }
        self.files.get_mut(name).expect("inserted above")
    }

    fn draw_ppm(&mut self, ppm: u32) -> bool {
        self.rng.random_range(0..1_000_000u32) < ppm
    }
}

/// One record framed as `append_record` writes it, for callers that rewrite a whole file.
pub fn frame_record<T: Serialize>(record: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(record).expect("records serialise");
    let checksum = crate::hash::hash_bytes(&payload) as u32;
    let mut frame = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&checksum.to_le_bytes());
    frame.extend_from_slice(&payload);
    frame
}

/// The length of the whole frame at the start of `bytes`, if it is intact.
fn intact_frame_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < RECORD_HEADER_BYTES {
        return None;
    }
    let len = u32::from_le_bytes(bytes[0..4].try_into().ok()?) as usize;
    let checksum = u32::from_le_bytes(bytes[4..8].try_into().ok()?);
    let payload = bytes.get(RECORD_HEADER_BYTES..RECORD_HEADER_BYTES + len)?;
    (crate::hash::hash_bytes(payload) as u32 == checksum).then_some(RECORD_HEADER_BYTES + len)
}

fn decode_frame<T: DeserializeOwned>(bytes: &[u8]) -> Option<(T, usize)> {
    let frame_len = intact_frame_len(bytes)?;
    let value = postcard::from_bytes(&bytes[RECORD_HEADER_BYTES..frame_len]).ok()?;
    Some((value, frame_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn disk() -> Disk {
        Disk::new(ChaCha8Rng::seed_from_u64(7))
    }

    #[test]
    fn unsynced_writes_are_lost_on_crash() {
        let mut disk = disk();
        disk.append("log", b"kept");
        disk.sync();
        disk.append("log", b"lost");
        assert_eq!(disk.read("log"), b"keptlost", "reads see unsynced data");
        disk.crash();
        assert_eq!(disk.read("log"), b"kept");
    }

    #[test]
    fn a_replace_is_all_or_nothing_across_a_crash() {
        let mut disk = disk();
        disk.write("meta", b"old");
        disk.sync();
        disk.write("meta", b"new");
        disk.crash();
        assert_eq!(disk.read("meta"), b"old");
    }

    #[test]
    fn records_round_trip_and_a_torn_tail_is_reported() {
        let mut disk = disk();
        disk.append_record("log", &(1u64, "one".to_string()));
        disk.append_record("log", &(2u64, "two".to_string()));
        let (records, torn) = disk.read_records::<(u64, String)>("log");
        assert_eq!(records, vec![(1, "one".into()), (2, "two".into())]);
        assert!(!torn);
        disk.append("log", &[5, 0, 0]);
        let (records, torn) = disk.read_records::<(u64, String)>("log");
        assert_eq!(records.len(), 2);
        assert!(torn);
        assert!(disk.truncate_torn_records("log"));
        assert_eq!(disk.read_records::<(u64, String)>("log"), (records, false));
        assert!(!disk.truncate_torn_records("log"), "nothing left to cut");
    }

    #[test]
    fn torn_writes_keep_a_prefix_of_unsynced_appends() {
        let mut kept_lengths = Vec::new();
        for seed in 0..20 {
            let mut disk = Disk::new(ChaCha8Rng::seed_from_u64(seed));
            disk.set_faults(DiskFaults {
                torn_write_ppm: 1_000_000,
                lost_sync_ppm: 0,
            });
            disk.append("log", b"AAAA");
            disk.sync();
            disk.append("log", b"BBBBBBBB");
            disk.crash();
            let kept = disk.read("log");
            assert!(kept.starts_with(b"AAAA"));
            assert!(b"AAAABBBBBBBB".starts_with(kept));
            kept_lengths.push(kept.len());
        }
        assert!(
            kept_lengths.iter().any(|len| *len > 4),
            "some tears keep a partial tail"
        );
    }

    #[test]
    fn a_lost_sync_persists_nothing() {
        let mut disk = disk();
        disk.set_faults(DiskFaults {
            torn_write_ppm: 0,
            lost_sync_ppm: 1_000_000,
        });
        disk.append("log", b"x");
        disk.sync();
        disk.crash();
        assert_eq!(disk.read("log"), b"");
        assert_eq!(disk.syncs(), 1);
    }

    /// Appends after a replace, a remove, and a sync in between: a crash keeps exactly
    /// what the last sync saw, whatever mix of changes followed it.
    #[test]
    fn a_crash_keeps_the_last_synced_contents_after_any_mix_of_changes() {
        let mut disk = disk();
        disk.append("log", b"ab");
        disk.sync();
        disk.append("log", b"cd");
        disk.write("log", b"new");
        disk.append("log", b"er");
        assert_eq!(disk.read("log"), b"newer");
        disk.crash();
        assert_eq!(
            disk.read("log"),
            b"ab",
            "the synced prefix, not the replacement"
        );

        disk.write("log", b"xy");
        disk.sync();
        disk.append("log", b"z");
        disk.remove("log");
        disk.append("log", b"w");
        disk.crash();
        assert_eq!(disk.read("log"), b"xy", "a remove is undone like a replace");

        disk.append("log", b"12");
        disk.sync();
        disk.append("log", b"3");
        disk.sync();
        disk.append("log", b"4");
        disk.crash();
        assert_eq!(disk.read("log"), b"xy123", "each sync keeps its appends");
        disk.crash();
        assert_eq!(disk.read("log"), b"xy123", "a crash leaves it all durable");
    }
}
