//! A Dubbo-style RPC framework on the registry: Dubbo's load balancers as a public
//! library (`lb`). It owns the choices; calls, discovery and cluster modes build on it.

pub mod lb;
