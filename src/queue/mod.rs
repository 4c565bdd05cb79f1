//! The job queue (syft-code-queue, SPEC §3): its layout, reading a job folder into facts, and
//! everything that moves jobs between status folders. This file only names the parts; its
//! re-exports are the queue's vocabulary for the rest of the crate.

pub(crate) mod content;
pub(crate) mod copies;
pub mod gate;
pub(crate) mod index;
pub(crate) mod inspect;
pub(crate) mod job;
pub(crate) mod journal;
pub(crate) mod layout;
pub mod metadata;
pub(crate) mod par;
pub(crate) mod proof;
pub(crate) mod record;
pub mod review;
pub(crate) mod uid;

pub use inspect::inspect;
pub use job::Inspection;
pub use layout::{Queue, Status, is_valid_uid};
