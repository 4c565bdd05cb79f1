//! Keeps `--help` complete: every command, argument and option of the command tree has a
//! description.

use clap::CommandFactory;

use super::args::Cli;

/// The arguments without help in `cmd` and its subcommands, as `command path: --name`.
fn undescribed(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    let here = format!("{path} {}", cmd.get_name()).trim().to_string();
    if cmd.get_about().is_none() && !path.is_empty() {
        out.push(format!("{here}: the command itself"));
    }
    for a in cmd.get_arguments() {
        // clap's own --help and --version are described by clap.
        if matches!(a.get_id().as_str(), "help" | "version") {
            continue;
        }
        if a.get_help().is_none() && a.get_long_help().is_none() {
            let name = a
                .get_long()
                .map(|l| format!("--{l}"))
                .unwrap_or_else(|| a.get_id().to_string().to_uppercase());
            out.push(format!("{here}: {name}"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() != "help" {
            undescribed(sub, &here, out);
        }
    }
}

#[test]
fn every_command_argument_and_option_has_a_description() {
    let mut missing = Vec::new();
    undescribed(&Cli::command(), "", &mut missing);
    assert!(
        missing.is_empty(),
        "no help text for:\n{}",
        missing.join("\n")
    );
}
