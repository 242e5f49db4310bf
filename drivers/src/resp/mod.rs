//! The Redis protocol, shared by the engines that speak it (`redis` and
//! `falkordb`): connection settings and a pool of multiplexed connections
//! that fails fast while the server is down. Neither engine reaches into
//! the other; both build on this.

mod config;
mod connect;
pub(crate) mod durability;
mod frame;
mod link;
mod manager;
mod pool;
mod slot;

pub use config::{Protocol, RedisConfig};
pub(crate) use frame::key_text;
#[cfg(feature = "fuzzing")]
pub(crate) use frame::{Framer, Reply};
pub(crate) use manager::Pooled;
pub(crate) use pool::{Calls, RedisPool};
