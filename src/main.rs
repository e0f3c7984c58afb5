//! `vigie`: the whole node in one command. `vigie up` runs the agent and the router of this node
//! in one process (see `up.rs`); each also exists on its own as `vigie-agent` and `vigie-router`.

mod nodeconfig;
mod up;

use std::process::ExitCode;

use clap::{Arg, Command};

fn command() -> Command {
    Command::new("vigie")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Vigie: the observability agent and alert router of this node, in one command")
        .subcommand_required(true)
        .subcommand(up::command())
        .arg(
            Arg::new("log.level")
                .long("log.level")
                .global(true)
                .default_value("info")
                .value_parser(["debug", "info", "warn", "error"])
                .help("Least severe log event written to standard error"),
        )
}

fn main() -> ExitCode {
    let m = command().get_matches();
    match m.subcommand() {
        Some(("up", u)) => up::main(u),
        _ => ExitCode::from(2),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_well_formed() {
        super::command().debug_assert();
    }
}
