//! The job queue (syft-code-queue, SPEC §3): its layout, reading a job folder into facts, and
//! everything that moves jobs between status folders. This file only names the parts; its
//! re-exports are the queue's vocabulary for the rest of the crate.

pub mod content;
pub mod copies;
pub mod gate;
pub mod inspect;
pub mod job;
pub mod journal;
pub mod layout;
pub mod metadata;
pub mod par;
pub mod proof;
pub(crate) mod record;
pub mod review;

pub use inspect::inspect;
pub use job::Inspection;
pub use layout::{Queue, Status, is_valid_uid};
