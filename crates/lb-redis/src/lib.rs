#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod balancer;
mod breaker;
mod config;
mod keys;
mod scripts;
mod snapshot;

pub use balancer::RedisBalancer;
pub use config::{RedisBalancerConfig, DEFAULT_PREFIX};
