//! The `ecsdoctor` binary: parse arguments, decide color once, run the command, map the result
//! to a documented exit code. Everything else lives in the library.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use ecsdoctor::cli::{Cli, ColorWhen, Command};
use ecsdoctor::cmd;
use ecsdoctor::error::EXIT_BAD_INPUT;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_BAD_INPUT } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let color = match cli.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    };
    let result = match &cli.command {
        Command::Why(a) => cmd::why::run(a, color),
        Command::Explain(a) => cmd::explain::run(a, color),
        Command::Capture(a) => cmd::capture::run(a),
        Command::Scan(a) => cmd::scan::run(a, color),
        Command::Lambda => cmd::lambda::run(),
        Command::Rules(r) => cmd::rules::run(r),
        Command::Policy(p) => cmd::policy::run(p),
        Command::Completions { shell } => cmd::with_stdout(|w| {
            clap_complete::generate(*shell, &mut Cli::command(), "ecsdoctor", w);
            Ok(())
        })
        .map(|_| 0),
        Command::Man => cmd::with_stdout(|w| clap_mangen::Man::new(Cli::command()).render(w)).map(|_| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            // A closed pipe (`| head`) ends quietly. Messages quote file names, event fields and
            // AWS answers: they are made terminal-safe here, once, for every command.
            if !f.message.is_empty() {
                eprintln!("error: {}", ecsdoctor::sanitize::error_line(&f.message));
            }
            ExitCode::from(f.code)
        }
    }
}
