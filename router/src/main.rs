//! vigie-router: rule evaluation and alert routing. The rule engine and the dispatcher land with
//! their own issues; until then the binary exists so the workspace, CI and packaging are whole.

use std::process::ExitCode;

use clap::{Arg, ArgAction, Command};

fn command() -> Command {
    Command::new("vigie-router")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Evaluates Prometheus rule files and routes alerts (not implemented yet)")
        .subcommand_required(true)
        .subcommand(
            Command::new("run").about("Run the router").arg(
                Arg::new("config.file")
                    .long("config.file")
                    .action(ArgAction::Set),
            ),
        )
        .subcommand(Command::new("check").about("Check configuration or rule files"))
        .subcommand(Command::new("test").about("Run rule unit tests"))
}

fn main() -> ExitCode {
    let m = command().get_matches();
    let name = m.subcommand_name().unwrap_or("run");
    eprintln!("vigie-router {name}: not implemented yet");
    ExitCode::from(2)
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_is_well_formed() {
        super::command().debug_assert();
    }
}
