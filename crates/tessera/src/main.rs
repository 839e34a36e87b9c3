//! `tessera`: parses arguments, loads configuration, and hands over to the library.

use clap::Parser;
use std::process::ExitCode;
use tessera::app::{Application, shutdown_signal};
use tessera::cli::{Cli, Command};
use tessera::config::Config;
use tracing_subscriber::EnvFilter;

fn init_logging(config: &Config, quiet: bool) {
    let level = if quiet { "warn" } else { config.log_level.as_str() };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if config.log_json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = Application::build(config).await?;
    println!("Tessera is listening on {} (bound to {})", app.issuer(), app.local_addr());
    if let Some(token) = app.accounts().ensure_setup_token().await? {
        println!(
            "No administrator exists yet. Create the first one with this one-time link (valid 24 hours):\n  {}/setup?token={}",
            app.issuer(),
            token.expose()
        );
    }
    app.run_until_stopped(shutdown_signal()).await
}

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            return ExitCode::from(2);
        }
    };
    let is_serve = matches!(cli.command, Command::Serve | Command::Demo { .. });
    init_logging(&config, !is_serve);
    let result = if let Command::Demo { port } = cli.command {
        tessera::demo::run(config, port).await
    } else if is_serve {
        serve(config).await
    } else {
        match tessera::cli::run_admin(&config, cli.command).await {
            Ok(v) => {
                println!("{v}");
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: {e:#}");
            ExitCode::FAILURE
        }
    }
}
