//! `allow`, `trust` and `peers`: the owner's stores, changed through the services.

use super::args::{AllowCommand, Cli, PeersCommand, TrustCommand};
use super::common::{resolve_job, store_layout, term};
use crate::core::attestation::ProofMode;
use crate::error::{Error, Result};
use crate::service::{allowlist, peers, trust};
use crate::store::audit::Actor;

pub(crate) fn allow(cli: &Cli, cmd: &AllowCommand) -> Result<()> {
    let l = store_layout(cli)?;
    match cmd {
        AllowCommand::Add { emails, proof } => {
            let mode = proof.as_deref().and_then(ProofMode::parse);
            for e in emails {
                let done = allowlist::add_pinned(&l, &Actor::Cli, e, mode)?;
                let (a, p) = (done.added, done.pinned);
                let mail = &a.email;
                if a.added {
                    println!("added {mail}");
                } else {
                    println!("{mail} is already in the allowlist");
                }
                match (&p.pin.key, &p.no_key) {
                    (Some(k), _) => println!(
                        "pinned {mail}'s identity key {k}; proof {}",
                        p.pin.proof.as_str()
                    ),
                    (None, why) => println!(
                        "{mail} has published no identity key ({}); proof {}: {}",
                        why.as_deref().unwrap_or("none found"),
                        p.pin.proof.as_str(),
                        if p.pin.proof == ProofMode::Required {
                            "unsigned jobs claiming this address wait; the key of their first proven job is pinned"
                        } else {
                            "their unsigned jobs are approved, labelled unverified; anyone can claim this address"
                        }
                    ),
                }
            }
            eprintln!(
                "note: a job's sender address is declared by whoever wrote the job; anyone can claim it"
            );
        }
        AllowCommand::Remove { emails } => {
            for e in emails {
                let r = allowlist::remove(&l, &Actor::Cli, e)?;
                if !r.removed {
                    return Err(Error::absent(
                        format!("{} is not in the allowlist", r.email),
                        "see `syft-reviewer allow list`",
                    ));
                }
                println!("removed {}", r.email);
            }
        }
        AllowCommand::List { json } => {
            let listing = allowlist::list(&l)?;
            for bad in &listing.invalid {
                eprintln!("warning: allowlist/{} is ignored: {}", bad.file, bad.reason);
            }
            if *json {
                println!("{}", serde_json::to_string(&listing).unwrap_or_default());
            } else {
                if listing.emails.is_empty() {
                    println!(
                        "nobody is in the allowlist yet; add trusted senders with `syft-reviewer allow add EMAIL`"
                    );
                }
                let width = listing.entries.iter().map(|e| e.email.len()).max();
                for e in &listing.entries {
                    let status = serde_json::to_value(e.proof.status).unwrap_or_default();
                    println!(
                        "{:width$}  proof {:8}  {}{}",
                        e.email,
                        e.mode.as_str(),
                        status.as_str().unwrap_or("?"),
                        e.proof
                            .key
                            .as_deref()
                            .map(|k| format!("  {k}"))
                            .unwrap_or_default(),
                        width = width.unwrap_or(0)
                    );
                }
            }
        }
    }
    Ok(())
}

pub(crate) fn peers(cli: &Cli, cmd: &PeersCommand) -> Result<()> {
    let l = store_layout(cli)?;
    match cmd {
        PeersCommand::List { json } => {
            let listing = peers::list(&l)?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&listing).unwrap_or_default()
                );
                return Ok(());
            }
            for b in &listing.invalid {
                eprintln!("warning: peers/{} is ignored: {}", b.file, b.reason);
            }
            if listing.approved.is_empty()
                && listing.pending.is_empty()
                && listing.revoked.is_empty()
            {
                println!(
                    "no peers and no peer requests (requests arrive in {})",
                    crate::store::peers::requests_dir(&l).display()
                );
            }
            for p in &listing.approved {
                let mut line = format!("approved  {}", p.email);
                if let (Some(at), Some(by)) = (&p.at, &p.by) {
                    line.push_str(&format!("  (by {by} at {at})"));
                }
                if !p.shared.is_empty() {
                    line.push_str(&format!("  shared: {}", p.shared.join(", ")));
                }
                if let (Some(mode), Some(proof)) = (p.mode, &p.proof) {
                    let status = serde_json::to_value(proof.status).unwrap_or_default();
                    line.push_str(&format!(
                        "  proof {}: {}{}",
                        mode.as_str(),
                        status.as_str().unwrap_or("?"),
                        proof
                            .key
                            .as_deref()
                            .map(|k| format!(" {k}"))
                            .unwrap_or_default()
                    ));
                }
                println!("{line}");
            }
            for r in &listing.pending {
                match &r.message {
                    Some(m) => println!("pending   {}  {m:?}", r.email),
                    None => println!("pending   {}", r.email),
                }
            }
            for p in &listing.revoked {
                println!(
                    "revoked   {}  (by {} at {})",
                    p.email,
                    p.by.as_deref().unwrap_or("?"),
                    p.at.as_deref().unwrap_or("?")
                );
            }
        }
        PeersCommand::Approve { peer } => {
            let done = peers::approve(&l, &Actor::Cli, peer)?;
            if let Some(e) = &done.config_error {
                eprintln!(
                    "warning: {e}\nno dataset is shared now; the running daemon shares them with the config it has in force"
                );
            }
            let a = done.approval;
            if a.approved {
                println!("approved peer {}", a.email);
            } else {
                println!("{} is already an approved peer", a.email);
            }
            match (&a.pin, &a.no_key) {
                (Some(pin), _) if pin.key.is_some() => println!(
                    "pinned {}'s identity key {}; peers_only rules with require_proof accept only jobs proven with it",
                    a.email,
                    pin.key.as_deref().unwrap_or_default()
                ),
                (_, why) => println!(
                    "{} has published no identity key ({}): peers_only rules with require_proof (the default) \
                     approve none of their jobs until they publish one and prove a job",
                    a.email,
                    why.as_deref().unwrap_or("none found")
                ),
            }
            for ds in &a.shared {
                println!("shared {ds} with {}", a.email);
            }
            for p in &a.problems {
                eprintln!("warning: {p}");
            }
        }
        PeersCommand::Revoke { peer } => {
            let Some(r) = peers::revoke(&l, &Actor::Cli, peer)? else {
                return Err(Error::absent(
                    format!("{} is not an approved peer", peer.trim().to_lowercase()),
                    "see `syft-reviewer peers list`",
                ));
            };
            let r = r.revocation;
            println!("revoked peer {}", r.email);
            for ds in &r.unshared {
                println!("removed {}'s read access to {ds}", r.email);
            }
            for p in &r.problems {
                eprintln!("warning: {p}");
            }
        }
    }
    Ok(())
}

pub(crate) fn trust(cli: &Cli, cmd: &TrustCommand) -> Result<()> {
    let l = store_layout(cli)?;
    match cmd {
        TrustCommand::Add {
            signature: Some(sig),
            ..
        } => {
            let m = trust::mark(&l, &Actor::Cli, sig)?;
            println!(
                "{} {sig}",
                if m.added {
                    "trusted"
                } else {
                    "already trusted:"
                }
            );
        }
        TrustCommand::Add {
            job: Some(job),
            status,
            ..
        } => {
            let m = trust::mark_job(&l, &Actor::Cli, &resolve_job(&l, job, *status)?, job)?;
            println!(
                "{} {} (\"{}\")",
                if m.added {
                    "trusted"
                } else {
                    "already trusted:"
                },
                m.signature,
                term(&m.name)
            );
        }
        TrustCommand::Add { .. } => {
            return Err(Error::invalid(
                "trust add needs a signature or --job",
                "see `syft-reviewer trust add --help`",
            ));
        }
        TrustCommand::Remove { signature } => {
            if trust::unmark(&l, &Actor::Cli, signature)?.is_none() {
                return Err(Error::absent(
                    format!("{signature} is not a trusted signature"),
                    "see `syft-reviewer trust list`",
                ));
            }
            println!("no longer trusted: {signature}");
        }
        TrustCommand::List { history, json } => {
            let rows: Vec<serde_json::Value> = if *history {
                trust::history(&l)?
                    .into_iter()
                    .map(|seen| serde_json::to_value(seen.record).unwrap_or_default())
                    .collect()
            } else {
                trust::list(&l)?
                    .into_iter()
                    .map(|r| serde_json::to_value(r).unwrap_or_default())
                    .collect()
            };
            if rows.is_empty() && !*json {
                println!(
                    "{}",
                    if *history {
                        "no job seen completing yet; the code of jobs that complete is listed here, for `syft-reviewer trust add SIGNATURE`"
                    } else {
                        "nothing trusted yet; mark code with `syft-reviewer trust add --job UID` (a job in the queue) or `syft-reviewer trust add SIGNATURE` (from `trust list --history`)"
                    }
                );
            }
            for row in &rows {
                if *json {
                    println!("{}", crate::core::visible::json_line(row));
                } else {
                    print_trust_row(row);
                }
            }
        }
    }
    Ok(())
}

fn print_trust_row(row: &serde_json::Value) {
    println!(
        "{}  {}  ({} file(s), requested by {})",
        term(row["signature"].as_str().unwrap_or("")),
        term(row["name"].as_str().unwrap_or("")),
        row["code_files"].as_array().map_or(0, |a| a.len()),
        row["requesters"]
            .as_array()
            .map(|a| a
                .iter()
                .filter_map(|v| v.as_str())
                .collect::<Vec<_>>()
                .join(", "))
            .map(|s| term(&s).into_owned())
            .unwrap_or_default()
    );
}
