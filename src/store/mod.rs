//! The owner's state on disk: the allowlist, trusted code, job history, peers, the audit chain,
//! the decision log, permission files, the app's folders, locks and secrets.

pub(crate) mod allowlist;
pub mod appdata;
pub(crate) mod audit;
pub(crate) mod decision_log;
pub(crate) mod grants;
pub(crate) mod history;
pub(crate) mod identity;
pub(crate) mod lock;
pub(crate) mod peers;
pub mod permfile;
pub(crate) mod pin;
pub(crate) mod secret;
pub(crate) mod trusted;
pub(crate) mod verdicts;
