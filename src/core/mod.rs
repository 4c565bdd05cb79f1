//! The rules of the product, independent of where jobs come from: the policy, the rule config,
//! the trusted-code signature, email addresses and the characters that make text look like
//! something else.

pub(crate) mod attestation;
pub(crate) mod canonical;
pub mod config;
pub(crate) mod config_words;
pub(crate) mod diff;
pub mod email;
pub(crate) mod fingerprint;
pub(crate) mod groups;
pub(crate) mod hash_cache;
pub(crate) mod myers;
pub(crate) mod policy;
pub(crate) mod rel_path;
pub mod signature;
pub(crate) mod visible;
