//! The `tether` binary: parse the command line, load the configuration, start
//! logging, and run. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use tether::{
    cli::{self, Cli, Command},
    config::Config,
    startup::Application,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("tether: {e}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();

    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => actix_web::rt::System::new().block_on(async {
            Application::build(config)
                .await?
                .run_until_signalled()
                .await?;
            Ok(())
        }),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(cli::run(command, config))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tether: {e:#}");
            ExitCode::FAILURE
        }
    }
}
