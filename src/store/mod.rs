//! The owner's state on disk: the allowlist, trusted code, job history, peers, the audit chain,
//! the decision log, permission files, the app's folders, locks and secrets.

pub mod allowlist;
pub mod appdata;
pub mod audit;
pub mod decision_log;
pub mod history;
pub mod identity;
pub mod lock;
pub mod peers;
pub mod permfile;
pub mod pin;
pub mod secret;
pub mod trusted;
