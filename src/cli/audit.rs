//! `audit`: verify, show, export, reset the anchor.

use super::args::{AuditCommand, Cli};
use super::common::layout;
use crate::error::{Error, Result};
use crate::store::audit::AuditLog;

pub(crate) fn audit(cli: &Cli, cmd: &AuditCommand) -> Result<()> {
    let l = layout(cli)?;
    match cmd {
        AuditCommand::Verify { public_key } => {
            let v = crate::service::audit::verify(&l, public_key.as_deref())?;
            println!("{}", serde_json::to_string(&v).unwrap_or_default());
            if !v.valid {
                return Err(Error::invalid("the audit chain does not verify", v.reason));
            }
        }
        AuditCommand::Show => {
            if AuditLog::new(&l).print_verified("") == 0 {
                eprintln!(
                    "the audit chain has no entries yet: decisions and store changes are recorded there"
                );
            }
        }
        AuditCommand::Export { since } => {
            let since = since.as_deref().unwrap_or("");
            if AuditLog::new(&l).print_verified(since) == 0 {
                if since.is_empty() {
                    eprintln!(
                        "the audit chain has no entries yet: decisions and store changes are recorded there"
                    );
                } else {
                    eprintln!("no audit entries since {since}");
                }
            }
        }
        AuditCommand::ResetAnchor { yes } => {
            println!("{}", crate::service::audit::reset_anchor(&l, *yes)?)
        }
    }
    Ok(())
}
