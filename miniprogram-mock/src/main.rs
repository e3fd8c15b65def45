//! `wechat-mock`: runs the WeChat mini-program API mock until Ctrl-C.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use miniprogram_mock::{MockConfig, MockServer};

/// Serve a local mock of the WeChat mini-program server APIs.
#[derive(Debug, Parser)]
#[command(name = "wechat-mock", version)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "WECHAT_MOCK_LISTEN", default_value = "127.0.0.1:8090")]
    listen: String,
    /// The appid the mock accepts.
    #[arg(long, env = "WECHAT_MOCK_APPID", default_value_t = MockConfig::default().appid)]
    appid: String,
    /// The app secret the mock accepts.
    #[arg(long, env = "WECHAT_MOCK_SECRET", default_value_t = MockConfig::default().secret)]
    secret: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        // Colour codes only help a human at a terminal; in log files they are noise.
        .with_ansi(std::io::stdout().is_terminal())
        .init();

    let args = Args::parse();
    let config = MockConfig {
        appid: args.appid,
        secret: args.secret,
        ..MockConfig::default()
    };
    let appid = config.appid.clone();
    let server = match MockServer::start(&args.listen, config).await {
        Ok(server) => server,
        Err(err) => {
            tracing::error!(listen = %args.listen, %err, "cannot start the WeChat mock");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(base_url = %server.base_url(), %appid, "ready; press Ctrl-C to stop");

    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::error!(%err, "cannot listen for Ctrl-C");
    }
    tracing::info!("shutting down");
    server.stop().await;
    ExitCode::SUCCESS
}
