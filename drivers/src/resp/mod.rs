//! The Redis protocol, shared by the engines that speak it (`redis` and
//! `falkordb`): connection settings and a pool of multiplexed connections
//! that fails fast while the server is down. Neither engine reaches into
//! the other; both build on this.

mod config;
pub(crate) mod durability;
mod frame;
mod link;
mod manager;
mod pool;

pub use config::{Protocol, RedisConfig};
pub(crate) use manager::Pooled;
pub(crate) use pool::RedisPool;
