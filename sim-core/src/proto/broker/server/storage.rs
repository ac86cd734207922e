//! What the broker keeps on disk and gets back after a crash: `broker.meta` (durable
//! exchanges, queues and bindings, rewritten and synced on each change) and `broker.log`
//! (enqueue and remove records of persistent messages in durable queues, synced by the
//! group commit, compacted to its live records now and then). It never decides what a
//! record means for a message's life; `flow.rs` writes them in the order that keeps a
//! message somewhere whatever prefix of them survives.

use serde::{Deserialize, Serialize};

use super::super::queue::{Queue, Queued};
use super::super::{ExchangeKind, Host, Message, Obs, QueueArgs};
use super::Broker;
use crate::node::Ctx;

const META_FILE: &str = "broker.meta";
const LOG_FILE: &str = "broker.log";
/// Log records before the broker compacts the log to its live records.
const LOG_RECORDS_MAX: u32 = 100_000;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Exchange {
    pub kind: ExchangeKind,
    pub durable: bool,
    /// (queue, binding key), in bind order, each pair once.
    pub bindings: Vec<(String, String)>,
}

/// A durable exchange as `broker.meta` keeps it: name, type, (queue, key) bindings.
type DurableExchange = (String, ExchangeKind, Vec<(String, String)>);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Meta {
    exchanges: Vec<DurableExchange>,
    queues: Vec<(String, bool, QueueArgs)>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) enum LogRecord {
    Enqueue {
        queue: String,
        position: u64,
        routing_key: String,
        message: Message,
        expires_at_ns: Option<u64>,
    },
    Remove {
        queue: String,
        position: u64,
    },
    /// Records that take effect together or not at all: a dead-letter's new copies and
    /// the source's removal. Written as one frame, a torn write keeps all or none of
    /// them, so a crash can neither lose the message nor leave it in both queues.
    Atomic(Vec<LogRecord>),
}

impl Broker {
    pub(super) fn recover<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        for (name, kind) in [
            ("amq.direct", ExchangeKind::Direct),
            ("amq.topic", ExchangeKind::Topic),
            ("amq.fanout", ExchangeKind::Fanout),
        ] {
            let exchange = Exchange {
                kind,
                durable: true,
                bindings: Vec::new(),
            };
            self.exchanges.insert(name.to_string(), exchange);
        }
        let meta: Meta = postcard::from_bytes(ctx.disk().read(META_FILE)).unwrap_or_default();
        for (name, auto_delete, args) in meta.queues {
            self.queues
                .insert(name.clone(), Queue::new(name, true, auto_delete, args));
        }
        for (name, kind, bindings) in meta.exchanges {
            self.exchanges.insert(
                name,
                Exchange {
                    kind,
                    durable: true,
                    bindings,
                },
            );
        }
        let (records, torn) = ctx.disk().read_records::<LogRecord>(LOG_FILE);
        if torn {
            ctx.disk().truncate_torn_records(LOG_FILE);
        }
        for record in records {
            self.replay(ctx, record);
        }
        self.messages = self.queues.values().map(|q| q.ready.len() as u32).sum();
        self.compact_log(ctx);
        let recovered = self
            .queues
            .values()
            .map(|q| {
                let copies = q.ready.values().map(|m| m.message.copy()).collect();
                (q.name.clone(), copies)
            })
            .collect();
        ctx.observe(Obs::Recovered { queues: recovered });
    }

    /// Applies one recovered log record to the queues.
    fn replay<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, record: LogRecord) {
        match record {
            LogRecord::Enqueue {
                queue,
                position,
                routing_key,
                message,
                expires_at_ns,
            } => {
                let Some(queue) = self.queues.get_mut(&queue) else {
                    return;
                };
                ctx.sometimes("broker.message-recovered-from-disk");
                let queued = Queued {
                    message,
                    routing_key,
                    expires_at_ns,
                    redelivered: true,
                };
                queue.ready.insert(position, queued);
                queue.position_next = queue.position_next.max(position + 1);
            }
            LogRecord::Remove { queue, position } => {
                if let Some(queue) = self.queues.get_mut(&queue) {
                    queue.ready.remove(&position);
                }
            }
            LogRecord::Atomic(records) => {
                for record in records {
                    debug_assert!(!matches!(record, LogRecord::Atomic(_)), "never nested");
                    self.replay(ctx, record);
                }
            }
        }
    }

    pub(super) fn maybe_compact<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        if self.log_records > LOG_RECORDS_MAX {
            self.compact_log(ctx);
        }
    }

    /// Rewrites the log to the live records only, and syncs it. Pending work first: a
    /// dead-letter in flight is in no queue until it runs.
    pub(super) fn compact_log<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        self.run_work(ctx);
        let mut live = Vec::new();
        let mut count = 0;
        for queue in self.queues.values().filter(|q| q.durable) {
            for (position, queued) in queue.ready.iter().chain(queue.unacked.iter()) {
                if queued.message.persistent {
                    let record = LogRecord::Enqueue {
                        queue: queue.name.clone(),
                        position: *position,
                        routing_key: queued.routing_key.clone(),
                        message: queued.message.clone(),
                        expires_at_ns: queued.expires_at_ns,
                    };
                    live.extend_from_slice(&crate::disk::frame_record(&record));
                    count += 1;
                }
            }
        }
        ctx.disk().write(LOG_FILE, &live);
        ctx.disk().sync();
        self.log_records = count;
    }

    pub(super) fn save_meta<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let durable_queues: Vec<&Queue> = self.queues.values().filter(|q| q.durable).collect();
        let is_durable_queue = |name: &str| durable_queues.iter().any(|q| q.name == name);
        let mut meta = Meta {
            exchanges: self
                .exchanges
                .iter()
                .filter(|(name, x)| x.durable && !name.starts_with("amq."))
                .map(|(name, x)| {
                    let bindings = x
                        .bindings
                        .iter()
                        .filter(|(q, _)| is_durable_queue(q))
                        .cloned()
                        .collect();
                    (name.clone(), x.kind, bindings)
                })
                .collect(),
            queues: durable_queues
                .iter()
                .map(|q| (q.name.clone(), q.auto_delete, q.args.clone()))
                .collect(),
        };
        // Bindings of durable queues to the built-in exchanges are durable too.
        for (name, x) in self
            .exchanges
            .iter()
            .filter(|(name, _)| name.starts_with("amq."))
        {
            let bindings: Vec<(String, String)> = x
                .bindings
                .iter()
                .filter(|(q, _)| is_durable_queue(q))
                .cloned()
                .collect();
            if !bindings.is_empty() {
                meta.exchanges.push((name.clone(), x.kind, bindings));
            }
        }
        let bytes = postcard::to_allocvec(&meta).expect("meta serialises");
        ctx.disk().write(META_FILE, &bytes);
        ctx.disk().sync();
    }

    /// Appends a record to the log, or to the open atomic group if there is one.
    pub(super) fn log<H: Host>(&mut self, ctx: &mut Ctx<'_, H>, record: LogRecord) {
        if let Some(group) = &mut self.log_group {
            group.push(record);
            return;
        }
        ctx.disk().append_record(LOG_FILE, &record);
        self.log_records += 1;
    }

    /// Starts collecting records into one atomic group (see `LogRecord::Atomic`).
    pub(super) fn log_group_open(&mut self) {
        assert!(self.log_group.is_none(), "atomic log groups never nest");
        self.log_group = Some(Vec::new());
    }

    /// Writes the collected group as one record (a lone record as itself).
    pub(super) fn log_group_close<H: Host>(&mut self, ctx: &mut Ctx<'_, H>) {
        let mut group = self.log_group.take().expect("a group is open");
        let record = match group.len() {
            0 => return,
            1 => group.pop().expect("one record"),
            _ => LogRecord::Atomic(group),
        };
        self.log(ctx, record);
    }
}
