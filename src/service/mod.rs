//! The owner's actions, each written once: the CLI, the web API and the MCP server call these.
//! A function that changes a store takes the change lock, changes the store, records the audit
//! event under the lock and returns a typed result, which the API serialises and the CLI prints.
//! Front ends only parse their input and choose how to show the result.

pub(crate) mod allowlist;
pub(crate) mod audit;
pub(crate) mod bulk;
pub(crate) mod decide;
pub(crate) mod diff;
pub(crate) mod jobs;
pub(crate) mod peers;
pub(crate) mod select;
pub(crate) mod shown;
pub(crate) mod status;
pub(crate) mod trust;
pub(crate) mod votes;
