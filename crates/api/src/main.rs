//! `scantag`: serve the API, migrate the database, manage tenants, print the OpenAPI document.

use anyhow::Context;
use clap::{Parser, Subcommand};
use scantag_api::settings::Settings;
use scantag_api::{Application, admin, openapi, telemetry};
use scantag_domain::TenantId;
use scantag_domain::identity::staff::Role;
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(
    name = "scantag",
    version,
    about = "Customer-tagging backend for a WeChat mini-program CRM"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Operator tasks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The tagging rules.
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Evaluate every customer of a tenant against every rule and print what was corrected
    /// (normally nothing: every change already ran the rules).
    Recheck {
        #[arg(long)]
        tenant: i64,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a tenant and print a one-time invite for its first admin.
    CreateTenant {
        #[arg(long)]
        name: String,
        /// IANA timezone, default Asia/Shanghai.
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Print a one-time invite to an existing tenant.
    CreateInvite {
        #[arg(long)]
        tenant: i64,
        /// admin, manager or sales.
        #[arg(long, default_value = "sales")]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", openapi::document_json()?);
        return Ok(());
    }
    let settings = Settings::load()?;
    telemetry::init(&settings.log);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(settings).await?;
            app.run().await?;
        }
        Command::Migrate => {
            let db = connect(&settings).await?;
            scantag_domain::store::db::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::Openapi => {}
        Command::Rules(RulesCommand::Recheck { tenant }) => {
            let db = connect(&settings).await?;
            scantag_domain::store::db::migrate(&db).await?;
            let job =
                scantag_domain::customers::automation::jobs::recheck_now(&db, TenantId(tenant))
                    .await?;
            println!("job_id: {}", job.id);
            println!("customers_checked: {}", job.processed);
            println!("customers_corrected: {}", job.changed);
            println!("tag_corrections: {}", job.corrections);
            for c in &job.sample {
                println!(
                    "corrected: customer {} tag {} {} (rule {})",
                    c.customer_id,
                    c.tag_id,
                    if c.added { "added" } else { "removed" },
                    c.rule_id
                );
            }
        }
        Command::Admin(command) => {
            let db = connect(&settings).await?;
            scantag_domain::store::db::migrate(&db).await?;
            let ttl = chrono::Duration::hours(i64::from(settings.invite_ttl_hours));
            let invite = match command {
                AdminCommand::CreateTenant { name, timezone } => {
                    let (tenant, invite) =
                        admin::create_tenant(&db, &name, timezone.as_deref(), ttl).await?;
                    println!("tenant_id: {}", tenant.id);
                    println!("tenant_name: {}", tenant.name);
                    invite
                }
                AdminCommand::CreateInvite {
                    tenant,
                    role,
                    display_name,
                } => {
                    let role: Role = role.parse()?;
                    admin::create_invite(&db, TenantId(tenant), role, display_name.as_deref(), ttl)
                        .await?
                }
            };
            println!("invite_role: {}", invite.role);
            println!("invite_code: {}", invite.code);
            println!("invite_expires_at: {}", invite.expires_at.to_rfc3339());
        }
    }
    Ok(())
}

async fn connect(settings: &Settings) -> anyhow::Result<scantag_domain::DatabaseConnection> {
    scantag_domain::store::db::connect(
        settings.effective_database_url().expose_secret(),
        settings.database_max_connections,
        std::time::Duration::from_millis(settings.database_acquire_timeout_ms),
        settings.database_statement_cache,
    )
    .await
    .context("connecting to the database")
}
