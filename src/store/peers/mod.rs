//! Peers (filesystem-native): who may send jobs under `peers_only` rules, and who may read the
//! datasets the owner shares automatically.
//!
//! - A peer request is a file `peers/requests/<email>.json` that the requester writes into the
//!   owner's datasite. The folder's `syft.pub.yaml` (kept by [`ensure_requests_folder`]) lets each
//!   user write only the file named with their own email (`{{.UserEmail}}.json`), so the SyftBox
//!   server's permission check proves who wrote it: identity comes from the file name alone, never
//!   from the content (an optional `{"message": ...}`). The encoded form
//!   (`bob_at_uni_dot_edu.json`) is accepted too; only the owner can write such names.
//! - Approved peers are one file each in `peers/approved/<encoded email>` (0600, folder 0700),
//!   like the allowlist. Files made or deleted by hand count: a deleted file revokes the peer.
//! - Each requester and peer can read its answer `peers/answers/<encoded email>.json`
//!   (`{"email","status":"approved"|"pending"|"revoked","at"}`) and nobody else's.
//! - Approved peers get read access to the `auto_share_datasets` folders: the peer is added to
//!   the read list of the folder's catch-all rule (`pattern: '**'`, appended when missing) in its
//!   `syft.pub.yaml`; every other rule and field is kept.
//! - A private state file (`peers.json` in the state folder) records who was approved or revoked,
//!   by whom, and which grants this app added (dataset + peer). So nothing is approved or shared
//!   twice, a revoked peer is never approved again by its domain (only by hand), and revoking
//!   removes exactly the grants the app added. A grant the app added that disappears (an edit by
//!   hand) while the peer is approved and the dataset still configured is logged and re-added.
//!
//! Every function that changes something must be called with [`crate::store::audit::change_lock`] held; each
//! takes the `peers` store lock itself.

mod changes;
mod domain;
mod folders;
mod listing;
mod permissions;
mod requests;
mod sharing;
mod state;
mod sync;

pub use changes::{Approval, Revocation, approve, pin_first_key, revoke};
pub use folders::{answers_dir, approved_dir, approved_listing, peers_dir, requests_dir};
pub use listing::list;
pub use requests::ensure_requests_folder;
#[cfg(test)]
pub(crate) use requests::requests_permfile;
pub use sync::sync;
