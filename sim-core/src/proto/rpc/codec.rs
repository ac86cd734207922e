//! How a service looks to the code on either side, and what goes on the wire.
//!
//! `rpc_service!` declares a service as a Rust trait (what a provider implements) and
//! generates, in a module of its own, the provider's dispatcher (`Server`) and the
//! consumer's stub (`Client`), whose methods have the trait's names and arguments: the
//! caller builds a call as it would call a local method, and the framework carries it.
//! Arguments (as one tuple) and results are serde values in postcard's compact binary
//! encoding, at most `PAYLOAD_MAX` bytes; anything that does not decode, or is too big,
//! or names no method, is a typed `RpcError`, never a panic.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::spans::SpanContext;
use super::RpcError;

/// The largest encoded arguments or result a call may carry.
pub const PAYLOAD_MAX: usize = 64 * 1024;

pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, RpcError> {
    let bytes = postcard::to_allocvec(value).map_err(|e| RpcError::Decode(e.to_string()))?;
    if bytes.len() > PAYLOAD_MAX {
        return Err(RpcError::Oversized {
            bytes: bytes.len(),
            limit: PAYLOAD_MAX,
        });
    }
    Ok(bytes)
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, RpcError> {
    if bytes.len() > PAYLOAD_MAX {
        return Err(RpcError::Oversized {
            bytes: bytes.len(),
            limit: PAYLOAD_MAX,
        });
    }
    postcard::from_bytes(bytes).map_err(|e| RpcError::Decode(e.to_string()))
}

/// What a call returned to its application: a value, or nothing (a failsafe or failback
/// call whose failure was swallowed, as Dubbo returns an empty result).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Value(Vec<u8>),
    Empty,
}

/// A call built by a stub: which method, with what encoded arguments, returning `R`.
#[derive(Clone, Debug)]
pub struct Call<R> {
    pub service: &'static str,
    pub method: &'static str,
    /// Safe to repeat: the cluster modes may retry it on another provider.
    pub idempotent: bool,
    /// The encoded arguments, or why they could not be encoded.
    pub args: Result<Vec<u8>, RpcError>,
    /// The arguments as text, for consistent hashing (`hash.arguments` picks them).
    pub keys: Vec<String>,
    returns: PhantomData<fn() -> R>,
}

impl<R: DeserializeOwned> Call<R> {
    pub fn new(
        service: &'static str,
        method: &'static str,
        idempotent: bool,
        args: Result<Vec<u8>, RpcError>,
        keys: Vec<String>,
    ) -> Self {
        Self {
            service,
            method,
            idempotent,
            args,
            keys,
            returns: PhantomData,
        }
    }

    /// The call's result as the method's type: None for an empty answer.
    pub fn result(answer: Result<Answer, RpcError>) -> Result<Option<R>, RpcError> {
        match answer? {
            Answer::Value(bytes) => decode(&bytes).map(Some),
            Answer::Empty => Ok(None),
        }
    }

    /// The call with its result type erased, as the consumer carries it.
    pub fn erase(&self) -> Request {
        Request {
            service: self.service.to_string(),
            method: self.method.to_string(),
            idempotent: self.idempotent,
            args: self.args.clone(),
            keys: self.keys.clone(),
            parent: None,
            token: None,
        }
    }
}

/// A call as the consumer carries it (its result type is the application's business).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub service: String,
    pub method: String,
    pub idempotent: bool,
    pub args: Result<Vec<u8>, RpcError>,
    pub keys: Vec<String>,
    /// The span this call is made within (a provider's request it serves by calling
    /// on): the call joins its trace as a child. None starts a trace.
    pub parent: Option<SpanContext>,
    /// The caller's credential, for a gateway.
    pub token: Option<String>,
}

impl Request {
    /// This call, made while serving `span`.
    pub fn within(mut self, span: Option<SpanContext>) -> Self {
        self.parent = span;
        self
    }

    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }
}

/// A provider's side of one service: dispatches a method by name on encoded arguments.
pub trait Handler: CloneHandler {
    fn service(&self) -> &'static str;
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RpcError>;
    /// Whether `method` is idempotent (for checkers and the cluster modes).
    fn idempotent(&self, method: &str) -> bool;
}

/// A handler copied whole with its state, for run snapshots.
pub trait CloneHandler {
    fn clone_handler(&self) -> Box<dyn Handler>;
}

impl<T: Handler + Clone + 'static> CloneHandler for T {
    fn clone_handler(&self) -> Box<dyn Handler> {
        Box::new(self.clone())
    }
}

impl Clone for Box<dyn Handler> {
    fn clone(&self) -> Self {
        self.clone_handler()
    }
}

/// Declares a service: a trait, a `Server` that dispatches to an implementation of it and
/// a `Client` stub with one method per trait method, in module `$module`.
///
/// ```ignore
/// rpc_service! {
///     /// Stock and reservations of items.
///     pub mod inventory: Inventory = "inventory" {
///         #[idempotent] fn stock(item: String) -> u32;
///         fn reserve(item: String, quantity: u32) -> Result<u32, String>;
///     }
/// }
/// ```
#[macro_export]
macro_rules! rpc_service {
    (
        $(#[$doc:meta])*
        pub mod $module:ident : $trait:ident = $name:literal {
            $( $(#[$flag:ident])* fn $method:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ; )+
        }
    ) => {
        $(#[$doc])*
        pub mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::proto::rpc::codec::{self, Call, Handler};
            use $crate::proto::rpc::RpcError;

            pub const NAME: &str = $name;

            $(#[$doc])*
            pub trait $trait {
                $( fn $method(&mut self, $($arg: $ty),*) -> $ret; )+
            }

            /// Dispatches encoded calls to an implementation.
            #[derive(Clone)]
            pub struct Server<T: $trait>(pub T);

            impl<T: $trait + Clone + 'static> Handler for Server<T> {
                fn service(&self) -> &'static str {
                    NAME
                }

                fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>, RpcError> {
                    match method {
                        $( stringify!($method) => {
                            let ($($arg,)*): ($($ty,)*) = codec::decode(args)?;
                            codec::encode(&self.0.$method($($arg),*))
                        } )+
                        other => Err(RpcError::UnknownMethod(other.to_string())),
                    }
                }

                fn idempotent(&self, method: &str) -> bool {
                    match method {
                        $( stringify!($method) => [$(stringify!($flag)),*].contains(&"idempotent"), )+
                        _ => false,
                    }
                }
            }

            /// The consumer's stub: each method builds the call; the framework makes it.
            pub struct Client;

            impl Client {
                $(
                    pub fn $method($($arg: $ty),*) -> Call<$ret> {
                        let keys = vec![$(format!("{:?}", $arg)),*];
                        let args = codec::encode(&($($arg,)*));
                        let idempotent = [$(stringify!($flag)),*].contains(&"idempotent");
                        Call::new(NAME, stringify!($method), idempotent, args, keys)
                    }
                )+
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::rpc_service! {
        /// A test service.
        pub mod greeter: Greeter = "greeter" {
            #[idempotent] fn hello(name: String) -> String;
            fn count(by: u32) -> u32;
        }
    }

    #[derive(Clone)]
    struct Counter(u32);

    impl greeter::Greeter for Counter {
        fn hello(&mut self, name: String) -> String {
            format!("hello, {name}")
        }

        fn count(&mut self, by: u32) -> u32 {
            self.0 += by;
            self.0
        }
    }

    fn dispatch(call: &Request) -> Result<Vec<u8>, RpcError> {
        let mut server = greeter::Server(Counter(0));
        assert_eq!(server.service(), "greeter");
        server.call(&call.method, call.args.as_ref().unwrap())
    }

    #[test]
    fn a_stub_call_reaches_the_implementation_and_decodes_its_result() {
        let call = greeter::Client::hello("ada".into());
        assert!(call.idempotent);
        assert_eq!(call.keys, ["\"ada\""]);
        let answer = dispatch(&call.erase()).map(Answer::Value);
        assert_eq!(
            Call::<String>::result(answer),
            Ok(Some("hello, ada".to_string()))
        );
        assert!(!greeter::Client::count(2).idempotent);
        assert_eq!(Call::<u32>::result(Ok(Answer::Empty)), Ok(None));
    }

    #[test]
    fn bad_input_is_a_typed_error_never_a_panic() {
        let mut server = greeter::Server(Counter(0));
        assert_eq!(
            server.call("shout", &[]),
            Err(RpcError::UnknownMethod("shout".into()))
        );
        assert!(matches!(
            server.call("count", &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(RpcError::Decode(_))
        ));
        let huge = "x".repeat(PAYLOAD_MAX + 1);
        assert!(matches!(
            greeter::Client::hello(huge).args,
            Err(RpcError::Oversized { .. })
        ));
        assert!(matches!(
            decode::<u32>(&vec![0; PAYLOAD_MAX + 1]),
            Err(RpcError::Oversized { .. })
        ));
        assert!(matches!(
            Call::<u32>::result(Ok(Answer::Value(vec![0xff; 9]))),
            Err(RpcError::Decode(_))
        ));
    }
}
