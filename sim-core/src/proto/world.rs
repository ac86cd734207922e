//! `World`: the host every built-in scenario runs in. Its message, observation and timer
//! types wrap those of every built-in component, so one scenario may mix node kinds of
//! several protocols (registry servers beside brokers that find each other through
//! them) and every component's invariants and bugs apply wherever it runs.
//!
//! Adding a component means adding its types here. Nothing here behaves: this file only
//! wraps (see `node::host_enum!`).

use serde::Serialize;

use crate::conn::{self, Segment};
use crate::host_enum;
use crate::node::Proto;
use crate::proto::registry::state::{Registry, Txn};
use crate::proto::txn::{self, shop};
use crate::proto::{broadcast, broker, ping_pong, registry, rpc, zab};

#[derive(Clone)]
pub struct World;

impl Proto for World {
    type Msg = Msg;
    type Obs = Obs;
    type Timer = Timer;
}

host_enum! {
    /// Every built-in component's messages.
    #[derive(Clone, PartialEq, Serialize)]
    pub enum Msg {
        PingPong(ping_pong::Msg),
        PingPongConn(Segment<ping_pong::Msg>),
        Broadcast(broadcast::Msg),
        Broker(broker::Msg),
        Zab(Segment<zab::Msg<Txn, Registry>>),
        Registry(Segment<registry::Msg>),
        Lock(registry::LockMsg),
        Rpc(Segment<rpc::Frame>),
        Txn(Segment<txn::Frame>),
        Shop(Segment<shop::Frame>),
    }
}

host_enum! {
    /// Every built-in component's observations.
    #[derive(Clone, PartialEq)]
    pub enum Obs {
        PingPong(ping_pong::Obs),
        Broadcast(broadcast::Obs),
        Broker(broker::Obs),
        Zab(zab::Obs),
        Registry(registry::Obs),
        Rpc(rpc::Obs),
        Txn(txn::Obs),
        Shop(shop::Obs),
    }
}

host_enum! {
    /// Every built-in component's timers.
    #[derive(Clone, PartialEq, Serialize)]
    pub enum Timer {
        PingPong(ping_pong::Timer),
        PingPongConn(conn::Timer<ping_pong::Msg>),
        Broadcast(broadcast::Timer),
        Broker(broker::Timer),
        BrokerClient(broker::client::Timer),
        BrokerConn(conn::Timer<broker::Frame>),
        Zab(zab::Timer),
        ZabConn(conn::Timer<zab::Msg<Txn, Registry>>),
        Registry(registry::Timer),
        RegistryClient(registry::client::Timer),
        RegistryConn(conn::Timer<registry::Msg>),
        Rpc(rpc::Timer),
        RpcConn(conn::Timer<rpc::Frame>),
        Txn(txn::Timer),
        TxnConn(conn::Timer<txn::Frame>),
        Shop(shop::Timer),
        ShopConn(conn::Timer<shop::Frame>),
    }
}
