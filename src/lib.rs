//! syft-reviewer: reviews the code-execution jobs sent to a SyftBox data owner.
//!
//! The binary (`main.rs`) is a thin shell over [`cli`]. The layers, from the bottom up (see
//! ARCHITECTURE.md): [`error`], [`durable`] and [`syftbox`] (SyftBox paths) under everything;
//! [`core`] (policy, rules, signature); [`queue`] (the job queue: inspection, review, moves, the
//! human gate); [`store`] (the owner's state); [`announce`] (hooks and mail); and the three
//! front ends over them: [`daemon`], [`web`], [`cli`] and [`mcp`] (the last two ask a running
//! reviewer through [`remote`]).

pub(crate) mod announce;
pub mod cli;
pub mod core;
pub mod daemon;
pub(crate) mod durable;
pub mod error;
pub(crate) mod mcp;
pub mod queue;
pub(crate) mod remote;
pub(crate) mod service;
pub mod store;
pub mod syftbox;
pub mod web;

pub use error::{Error, Result};
