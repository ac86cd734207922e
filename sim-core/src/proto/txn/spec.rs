//! The bank as scenarios run it: coordinators, shards and bank clients, their
//! parameters (scaled from Narayana's defaults to a run of seconds: recovery every
//! 500 ms instead of 120 s, a 100 ms backoff instead of 10 s, a 400 ms orphan safety
//! interval instead of 20 s, a 500 ms transaction timeout instead of 60 s), and the
//! invariants.

use super::bank::{BankClient, BankConfig};
use super::coordinator::{Coordinator, CoordinatorConfig};
use super::shard::{Shard, ShardConfig};
use super::xa::{shard_of, Account, Amount};
use super::{invariants, Host};
use crate::node::Node;
use crate::params::{count, duration, flag, text, ParamSpec, MS};
use crate::proto::spec::{KindSpec, Layout, Part, ProtocolSpec};

/// Accounts a bank may have at most.
pub const ACCOUNTS_MAX: u64 = 10_000;

pub const KINDS: &[KindSpec] = &[
    KindSpec {
        name: "coordinator",
        doc: "the transaction manager: two-phase commit with a decision log and recovery",
        components: &["xa"],
    },
    KindSpec {
        name: "shard",
        doc: "a resource manager holding some accounts: locks, a prepare log, xa_recover",
        components: &["xa", "bank"],
    },
    KindSpec {
        name: "client",
        doc: "transfers money and reads every balance, recorded in Jepsen's bank format",
        components: &["bank"],
    },
];

pub const PARAMS: &[ParamSpec] = &[
    count(
        "accounts",
        "accounts, spread over the shards",
        2,
        ACCOUNTS_MAX,
        8,
    ),
    count(
        "balance",
        "every account's opening balance",
        0,
        1_000_000_000,
        100,
    ),
    count(
        "amount_max",
        "the largest amount one transfer moves",
        1,
        1_000_000,
        10,
    ),
    count(
        "read_percent",
        "reads among client operations, in percent",
        0,
        100,
        20,
    ),
    count("ops", "operations each client runs", 0, 100_000, 200),
    duration("think", "a client's pause between operations", 5 * MS),
    duration(
        "deadline",
        "how long a client waits for an answer before recording `info`",
        3_000 * MS,
    ),
    duration(
        "tx_timeout",
        "the transaction timeout: an active transaction (or branch) is rolled back after it",
        500 * MS,
    ),
    flag(
        "one_phase",
        "commit a transaction with one branch in one phase, without a log",
        true,
    ),
    flag(
        "read_only",
        "a branch that wrote nothing votes read-only and gets no phase two",
        true,
    ),
    duration(
        "recovery_period",
        "time between the coordinator's recovery passes",
        500 * MS,
    ),
    duration(
        "recovery_backoff",
        "time between a recovery pass's two scans",
        100 * MS,
    ),
    duration(
        "orphan_safety",
        "how long a prepared branch without a record must stay in doubt before it is \
         rolled back",
        400 * MS,
    ),
    flag(
        "heuristics",
        "shards decide alone on a branch left in doubt past `heuristic_after`",
        false,
    ),
    duration(
        "heuristic_after",
        "how long a prepared branch waits before its shard decides alone",
        1_000 * MS,
    ),
    text(
        "heuristic_decision",
        "what a shard decides alone",
        "rollback",
        &["rollback", "commit"],
    ),
];

pub const fn spec<H: Host>() -> ProtocolSpec<H> {
    ProtocolSpec {
        name: "bank",
        description: "a bank on XA two-phase commit: accounts on several shards (CP)",
        kinds: KINDS,
        params: PARAMS,
        check,
        build: build::<H>,
    }
}

fn check(layout: &Layout) -> Result<(), (&'static str, String)> {
    if layout.count("coordinator") == 0 || layout.count("shard") == 0 {
        return Err((
            "nodes",
            "a bank needs at least one `bank.coordinator` and one `bank.shard` node".into(),
        ));
    }
    let shards = layout.count("shard") as u64;
    let accounts = layout.params.number("accounts");
    if accounts < shards {
        return Err((
            "params",
            format!("{accounts} accounts leave some of the {shards} shards without one"),
        ));
    }
    Ok(())
}

fn build<H: Host>(layout: &Layout) -> Part<H> {
    let p = layout.params;
    let shards = layout.ids_of("shard");
    let coordinators = layout.ids_of("coordinator");
    let accounts = p.number("accounts") as u32;
    let initial = p.number("balance") as Amount;
    let tx_timeout_ns = p.number("tx_timeout");
    let coordinator = CoordinatorConfig {
        shards: shards.clone(),
        tx_timeout_ns,
        one_phase: p.flag("one_phase"),
        recovery_period_ns: p.number("recovery_period"),
        recovery_backoff_ns: p.number("recovery_backoff"),
        orphan_safety_ns: p.number("orphan_safety"),
        conn: layout.conn,
    };
    let shard_count = shards.len() as u32;
    let heuristic_after_ns = if p.flag("heuristics") {
        p.number("heuristic_after")
    } else {
        0
    };
    let shard = ShardConfig {
        index: 0,
        accounts: Vec::new(),
        initial,
        read_only: p.flag("read_only"),
        heuristic_after_ns,
        heuristic_commit: p.text("heuristic_decision") == "commit",
        conn: layout.conn,
    };
    let client = BankConfig {
        coordinator: coordinators[0],
        accounts,
        amount_max: p.number("amount_max"),
        read_percent: p.number("read_percent") as u32,
        ops: p.number("ops") as u32,
        think_ns: p.number("think"),
        deadline_ns: p.number("deadline"),
        conn: layout.conn,
    };
    let mut part = Part::default();
    part.node("coordinator", move |_| -> Box<dyn Node<H>> {
        Box::new(Coordinator::new(coordinator.clone()))
    });
    let shard_ids = shards.clone();
    part.node("shard", move |id| -> Box<dyn Node<H>> {
        let index = shard_ids.iter().position(|s| *s == id).expect("a shard") as u32;
        let accounts: Vec<Account> = (0..accounts)
            .filter(|a| shard_of(*a, shard_count) == index)
            .collect();
        Box::new(Shard::new(ShardConfig {
            index,
            accounts,
            ..shard.clone()
        }))
    });
    let clients = layout.ids_of("client");
    part.node("client", move |id| -> Box<dyn Node<H>> {
        let at = clients.iter().position(|c| *c == id).expect("a client");
        Box::new(BankClient::new(BankConfig {
            coordinator: coordinators[at % coordinators.len()],
            ..client.clone()
        }))
    });
    // After the faults stop: a broken connection is noticed, two recovery passes run,
    // an orphan outlives its safety interval, an active branch its timeout.
    let bound_ns = layout.conn.timeout_ns
        + 2 * (p.number("recovery_period") + p.number("recovery_backoff"))
        + p.number("orphan_safety")
        + tx_timeout_ns;
    part.check(layout, invariants::Atomic::new(shards, bound_ns));
    part.check(layout, invariants::Resolved::new(bound_ns));
    part.check(layout, invariants::Blocking::default());
    part.check(layout, invariants::Conservation::new(accounts, initial));
    part
}
