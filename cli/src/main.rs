//! `modelop-spark`, the operator CLI of the ModelOp Spark serverless runtime. This file only parses
//! the command line and dispatches; each subcommand is a module of `commands/` (cli/README.md).

mod cli;
mod commands;
mod context;
mod exit;
mod log_stream;
mod output;
mod row;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit::Exit;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.global.no_color {
        anstream::ColorChoice::Never.write_global();
    }
    let ctx = Context { printer: output::Printer { format: cli.global.format }, global: cli.global };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            output::note(format!("error: could not start the async runtime: {e}"));
            return Exit::Client.into();
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Status(args) => commands::status::run(&ctx, args).await,
            Command::Ls(args) => commands::ls::run(&ctx, args).await,
            Command::Cancel(args) => commands::cancel::run(&ctx, args).await,
            Command::Logs(args) => commands::logs::run(&ctx, args).await,
            Command::Watch(args) => commands::watch::run(&ctx, args).await,
            Command::Cost(args) => commands::cost::run(&ctx, args).await,
            Command::Submit(args) => commands::submit::run(&ctx, args).await,
            Command::Ui(args) => commands::ui::run(&ctx, args).await,
            Command::Doctor(args) => commands::doctor::run(&ctx, args).await,
            Command::Completion(args) => commands::completion::run(args),
        }
    });
    match result {
        Ok(exit) => exit.into(),
        Err(err) => {
            output::note(output::paint(anstyle::AnsiColor::Red.on_default().bold(), format!("error: {err}")));
            if let Some(hint) = err.hint() {
                output::hint(hint);
            }
            err.exit().into()
        }
    }
}
