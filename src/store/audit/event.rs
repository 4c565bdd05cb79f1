//! Who acts and what happened, as the audit chain names them. Both are stored as plain strings
//! (the names older versions wrote), so a name this version does not know is kept as it was
//! written: an entry's hash covers it, and re-serialising it differently would break `verify`.

use std::fmt;

/// An enum of fixed names stored as strings, with `Other` keeping any other name verbatim.
macro_rules! named {
    ($(#[$doc:meta])* $ty:ident { $($(#[$vdoc:meta])* $variant:ident => $name:literal,)* }
        $(prefixed { $(#[$pdoc:meta])* $pvariant:ident => $prefix:literal, })?) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $ty {
            $($(#[$vdoc])* $variant,)*
            $($(#[$pdoc])* $pvariant(Prefixed),)?
            /// A name written by another version (kept as written).
            Other(String),
        }

        impl $ty {
            pub fn as_str(&self) -> &str {
                match self {
                    $($ty::$variant => $name,)*
                    $($ty::$pvariant(p) => &p.0,)?
                    $ty::Other(s) => s,
                }
            }
        }

        impl From<&str> for $ty {
            fn from(s: &str) -> $ty {
                match s {
                    $($name => $ty::$variant,)*
                    $(other if other.len() > $prefix.len() && other.starts_with($prefix) => {
                        $ty::$pvariant(Prefixed(other.to_string()))
                    })?
                    other => $ty::Other(other.to_string()),
                }
            }
        }

        impl From<String> for $ty {
            fn from(s: String) -> $ty {
                match $ty::from(s.as_str()) {
                    $ty::Other(_) => $ty::Other(s),
                    known => known,
                }
            }
        }

        impl From<&$ty> for $ty {
            fn from(v: &$ty) -> $ty {
                v.clone()
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                match v {
                    $ty::Other(s) => s,
                    $($ty::$pvariant(p) => { let _ = $prefix; p.0 })?
                    known => known.as_str().to_string(),
                }
            }
        }

        impl Default for $ty {
            /// No name (an entry being filled in).
            fn default() -> $ty {
                $ty::Other(String::new())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

named! {
    /// Who made a change or a decision.
    Actor {
        /// The owner at the command line.
        Cli => "cli",
        /// The owner in the web UI.
        Web => "web",
        /// An assistant through the MCP server.
        Mcp => "mcp",
        /// The reviewer itself (rules, expiry, recovery, sharing with peers).
        Daemon => "daemon",
        /// Someone who changed a file by hand, found by the daemon.
        Filesystem => "filesystem",
    }
    prefixed {
        /// A member of `approval.reviewer_groups`, by the verdict file in their own folder:
        /// `reviewer:<email>`.
        Reviewer => "reviewer:",
    }
}

/// A name made of a fixed prefix and a value (`reviewer:alice@lab.org`), kept whole so it is
/// stored exactly as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixed(String);

impl Actor {
    /// The reviewer `email` (lower-cased) as an actor.
    pub fn reviewer(email: &str) -> Actor {
        Actor::Reviewer(Prefixed(format!("reviewer:{}", email.to_lowercase())))
    }

    /// The reviewer's email, when the actor is a reviewer.
    pub fn reviewer_email(&self) -> Option<&str> {
        match self {
            Actor::Reviewer(p) => p.0.strip_prefix("reviewer:"),
            _ => None,
        }
    }
}

named! {
    /// What an audit entry records.
    AuditEvent {
        /// A job moved out of pending/ (by a rule, the owner, expiry or recovery).
        Decision => "decision",
        AllowlistAdd => "allowlist.add",
        AllowlistRemove => "allowlist.remove",
        /// The identity key or proof setting pinned for a listed sender changed.
        AllowlistPin => "allowlist.pin",
        TrustedCodeMark => "trusted_code.mark",
        TrustedCodeUnmark => "trusted_code.unmark",
        /// A tool call through the MCP server.
        McpCall => "mcp.call",
        PeerApprove => "peer.approve",
        /// The identity key or proof setting pinned for an approved peer changed.
        PeerPin => "peer.pin",
        PeerRevoke => "peer.revoke",
        PeerShare => "peer.share",
        PeerUnshare => "peer.unshare",
        /// The owner accepted the chain as it is after a rollback or deletion.
        AnchorReset => "audit.anchor_reset",
        /// A job in approved/ or running/ that no decision explains.
        UnexplainedJob => "queue.unexplained_job",
        /// A decided status folder's permission file was loosened or gone, and was restored.
        PermissionsRestored => "queue.permissions_restored",
        /// A reviewer's verdict file, counted or refused when it was applied.
        ReviewVote => "review.vote",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_kept_as_written() {
        for name in ["decision", "peer.share", "config.change", ""] {
            let ev: AuditEvent = serde_json::from_str(&format!("{name:?}")).unwrap();
            assert_eq!(serde_json::to_string(&ev).unwrap(), format!("{name:?}"));
        }
        assert_eq!(AuditEvent::from("allowlist.add"), AuditEvent::AllowlistAdd);
        assert_eq!(Actor::from("web".to_string()), Actor::Web);
        assert_eq!(Actor::from("fuzz"), Actor::Other("fuzz".into()));
        assert_eq!(Actor::Mcp.to_string(), "mcp");
        let r = Actor::reviewer("Alice@Lab.org");
        assert_eq!(r.to_string(), "reviewer:alice@lab.org");
        assert_eq!(Actor::from("reviewer:alice@lab.org"), r);
        assert_eq!(r.reviewer_email(), Some("alice@lab.org"));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "\"reviewer:alice@lab.org\""
        );
        assert_eq!(Actor::from("reviewer:"), Actor::Other("reviewer:".into()));
    }
}
