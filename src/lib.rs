//! syft-reviewer: reviews the code-execution jobs sent to a SyftBox data owner.
//!
//! The binary (`main.rs`) is a thin shell over this library. Each concept has its own module:
//! SyftBox paths and config ([`syftbox`]), the job queue ([`queue`]), the stores ([`allowlist`],
//! [`trusted`]), the signature ([`signature`]), the pure decision function ([`policy`]), the
//! filesystem watcher ([`watcher`]) and the daemon that ties them together ([`daemon`]).

pub mod durable;
pub mod email;
pub mod error;
pub mod gate;
mod hash_cache;
pub mod metadata;
pub mod permfile;
pub mod signature;
pub mod syftbox;

pub use error::{Error, Result};
pub mod allowlist;
pub mod api;
pub mod appdata;
pub mod audit;
pub mod bypass;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod decision_log;
pub mod demo;
pub mod history;
pub mod hooks;
pub mod inspect_content;
pub mod inspect_copies;
pub mod journal;
pub mod live;
pub mod lock;
pub mod mcp;
pub mod notify;
pub mod par;
pub mod peers;
pub mod policy;
pub mod queue;
mod retry;
pub mod review;
pub mod secret;
pub mod trusted;
pub mod visible;
pub mod watcher;
pub mod web;
