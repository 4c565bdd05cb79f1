//! `decide`: the owner's verdict on one pending job (`decide UID VERDICT`), or on every pending
//! job a filter selects (`decide --all --sender EMAIL reject --rationale TEXT`), which prints the
//! count and asks for confirmation above [`CONFIRM_ABOVE`] jobs.

use std::io::{BufRead, IsTerminal, Write};

use clap::CommandFactory;
use clap::error::ErrorKind;

use super::args::{Cli, DecideArgs, VERDICTS};
use super::common::{layout, term};
use crate::error::{Error, Result};
use crate::queue::gate::{Ruling, RulingRequest};
use crate::service::bulk::{self, BulkOutcome, BulkRequest, Filter, JobOutcome, Selection};
use crate::service::select;
use crate::store::audit::Actor;

/// More jobs than this are decided together only with `--yes` or a confirmation at a terminal.
pub(crate) const CONFIRM_ABOVE: usize = 10;
/// Refusals printed one by one; the rest are counted.
const PRINTED_REFUSALS: usize = 50;

pub(crate) fn run(cli: &Cli, a: &DecideArgs) -> Result<()> {
    if !a.all {
        let Some(verdict) = &a.verdict else {
            usage(
                ErrorKind::MissingRequiredArgument,
                "no verdict given: use `decide UID approve|reject|request-changes`, or `decide --all [FILTERS] reject --rationale TEXT`",
            )
        };
        let req = RulingRequest {
            verdict: verdict.clone(),
            rationale: a.rationale.clone(),
            signature: a.signature.clone(),
            status: a.at.status,
            signature_required: false,
        };
        return super::jobs::decide(cli, &a.uid, req);
    }
    if a.verdict.is_some() || a.at.status.is_some() {
        usage(
            ErrorKind::ArgumentConflict,
            "with --all, give only the verdict, e.g. `decide --all --sender x@example.org reject --rationale \"spam\"`",
        )
    }
    let Some(verdict) = Ruling::parse(&a.uid).filter(|_| VERDICTS.contains(&a.uid.as_str())) else {
        usage(
            ErrorKind::InvalidValue,
            &format!("unknown verdict {:?}: use reject or request-changes", a.uid),
        )
    };
    let filter = Filter {
        sender: a.sender.clone().filter(|s| !s.trim().is_empty()),
        name: a.name.clone().filter(|s| !s.trim().is_empty()),
        flagged: a.flagged,
        older_than: a.older_than,
        newer_than: None,
    };
    let mut req = BulkRequest {
        selection: Selection::Filter(filter.clone()),
        verdict,
        rationale: a.rationale.clone(),
        limit: None,
    };
    let l = layout(cli)?;
    // The request is checked (verdict, rationale) before anything is counted or asked.
    bulk::check_request(&req)?;
    let chosen = match crate::remote::chosen(&l.state, &filter) {
        Ok(Some(c)) => c,
        Ok(None) => select::from_disk(&l, &filter, crate::queue::metadata::now_naive()),
        Err(why) => {
            eprintln!(
                "note: the running reviewer could not choose the jobs ({why}); read from the disk instead"
            );
            select::from_disk(&l, &filter, crate::queue::metadata::now_naive())
        }
    };
    let preview = bulk::preview(&l, &filter, &chosen, 3)?;
    if preview.matched == 0 {
        println!("no pending job matches");
        return Ok(());
    }
    // Never more than the owner agreed to: jobs arriving meanwhile stay pending.
    req.limit = Some(preview.matched);
    if preview.matched > CONFIRM_ABOVE && !a.yes {
        confirm(verdict, &preview)?;
    }
    let out = bulk::decide_among(&l, &Actor::Cli, &req, None, Some(chosen))?;
    print(&out, a.json);
    Ok(())
}

/// A usage error, reported as clap reports its own (exit code 2).
fn usage(kind: ErrorKind, msg: &str) -> ! {
    Cli::command().error(kind, msg).exit()
}

/// Asks at the terminal; without one, refuses and says to add `--yes`.
fn confirm(verdict: Ruling, p: &bulk::Preview) -> Result<()> {
    let what = question(verdict, p);
    if !std::io::stdin().is_terminal() {
        return Err(Error::invalid(
            format!(
                "{what} refused: more than {CONFIRM_ABOVE} jobs need a confirmation and there is no terminal to ask"
            ),
            "add --yes to decide them all",
        ));
    }
    print!("{what} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::io("read the answer from", "stdin", e))?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::invalid(
            "nothing was decided",
            "answer y to decide them, or add --yes",
        ))
    }
}

fn question(verdict: Ruling, p: &bulk::Preview) -> String {
    let action = match verdict {
        Ruling::Approve => "Approve",
        Ruling::Reject => "Reject",
        Ruling::RequestChanges => "Request changes on",
    };
    let mut from = p
        .senders
        .iter()
        .map(|s| term(if s.is_empty() { "(no sender)" } else { s }).into_owned())
        .collect::<Vec<_>>()
        .join(", ");
    if p.senders.len() >= 3 {
        from.push_str(", …");
    }
    format!("{action} {} pending jobs from {from}?", p.matched)
}

fn print(out: &BulkOutcome, json: bool) {
    if json {
        println!("{}", crate::core::visible::json_pretty(out));
        return;
    }
    let refused = out
        .results
        .iter()
        .filter(|r| r.result == JobOutcome::Refused);
    for r in refused.clone().take(PRINTED_REFUSALS) {
        println!(
            "refused {}: {}",
            term(&r.uid),
            term(r.reason.as_deref().unwrap_or(""))
        );
    }
    let unprinted = out.refused - out.refused.min(refused.count().min(PRINTED_REFUSALS));
    if unprinted > 0 {
        println!("… and {unprinted} more refused");
    }
    println!(
        "{} of {} matching jobs are now {} ({}); {} refused",
        out.decided,
        out.matched,
        out.status,
        out.verdict.as_str(),
        out.refused
    );
    if out.limit_reached {
        println!(
            "jobs that arrived after the count stay pending: run the command again to see them"
        );
    }
}
