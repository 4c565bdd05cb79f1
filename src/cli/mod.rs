//! The command line: the arguments ([`args`]) and one module per group of commands, each of
//! which calls the services of [`crate::service`] and prints. Commands that change stores are
//! safe while the daemon runs: they take the store locks and the daemon sees the change through
//! its watcher.

mod args;
mod audit;
mod common;
mod decide;
pub(crate) mod demo;
mod diff;
#[cfg(test)]
mod help_check;
mod jobs;
mod keys;
mod review;
mod run;
mod status;
mod stores;

use std::io::Write;

use clap::{Args, FromArgMatches, Parser};

use crate::error::{Error, Result};
use args::{Cli, Command, KeysCommand, RulesCommand, RunArgs};
use common::{identity, layout, store_layout, term};

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let is_run = matches!(cli.command, None | Some(Command::Run(_)));
    let default_level = if is_run { "info" } else { "warn" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        // Log lines carry job names, senders and file names: escaped like every other output,
        // so an owner tailing the log sees no terminal escapes and no forged lines.
        .format(|buf, record| {
            writeln!(
                buf,
                "[{} {:<5}] {}",
                buf.timestamp(),
                record.level(),
                term(&record.args().to_string())
            )
        })
        .init();
    match dispatch(cli) {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", term(&e.to_string()));
            1
        }
    }
}

fn dispatch(cli: Cli) -> Result<()> {
    match &cli.command {
        None => {
            let defaults =
                RunArgs::augment_args(clap::Command::new("run")).get_matches_from(["run"]);
            let args = RunArgs::from_arg_matches(&defaults).map_err(|e| {
                Error::invalid("the run command's defaults do not parse", e.to_string())
            })?;
            run::run(&cli, &args)
        }
        Some(Command::Run(args)) => run::run(&cli, args),
        Some(Command::Hash { files }) => jobs::hash(files),
        Some(Command::Signature { job_dir }) => jobs::signature(job_dir),
        Some(Command::Explain { query: q, diff }) => {
            jobs::explain(&cli, &q.job, q.at.status, q.json, *diff)
        }
        Some(Command::Allow(cmd)) => stores::allow(&cli, cmd),
        Some(Command::Trust(cmd)) => stores::trust(&cli, cmd),
        Some(Command::Peers(cmd)) => stores::peers(&cli, cmd),
        Some(Command::Jobs { status, json }) => jobs::jobs(&cli, *status, *json),
        Some(Command::Status { json }) => status::status(&cli, *json),
        Some(Command::Decide(args)) => decide::run(&cli, args),
        Some(Command::Audit(cmd)) => audit::audit(&cli, cmd),
        Some(Command::Review { owner, command }) => review::review(&cli, owner, command),
        Some(Command::Rules(RulesCommand::Check(q))) => {
            jobs::rules_check(&cli, &q.job, q.at.status, q.json)
        }
        Some(Command::Mcp) => {
            let l = store_layout(&cli)?;
            let stdin = std::io::stdin();
            crate::mcp::serve(&l, stdin.lock(), std::io::stdout().lock())
                .map_err(|e| Error::io("serve MCP on", "stdio", e))
        }
        Some(Command::Ui { open }) => crate::web::ui(&layout(&cli)?.state, *open),
        Some(Command::Attest { job, key }) => keys::attest(&identity(&cli)?, job, key.as_deref()),
        Some(Command::Keys(KeysCommand::Init { force })) => keys::init(&identity(&cli)?, *force),
        Some(Command::Keys(KeysCommand::Show { key })) => {
            keys::show(&identity(&cli)?, key.as_deref())
        }
        Some(Command::Submit {
            code,
            from,
            to,
            name,
            description,
            tags,
            sign,
            key,
        }) => jobs::submit(
            &cli,
            jobs::Submission {
                code,
                from,
                to: to.as_deref(),
                name,
                description,
                tags,
                sign: sign.then_some(key.as_deref()),
            },
        ),
    }
}
