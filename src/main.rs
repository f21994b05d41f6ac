use std::process::ExitCode;

use mcp_starter::{
    StartError,
    config::{CONFIG_ERROR_EXIT, Cli, Command},
    healthcheck, serve, telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse_or_exit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    match cli.command {
        Command::Serve(config) => {
            if let Err(message) = telemetry::init(&config.log) {
                eprintln!("{message}");
                return ExitCode::from(CONFIG_ERROR_EXIT as u8);
            }
            match runtime.block_on(serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(StartError::Config(message)) => {
                    eprintln!("{message}");
                    ExitCode::from(CONFIG_ERROR_EXIT as u8)
                }
                Err(StartError::Runtime(message)) => {
                    tracing::error!(event = "fatal", "{message}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Healthcheck(config) => ExitCode::from(runtime.block_on(healthcheck::run(&config)) as u8),
    }
}
