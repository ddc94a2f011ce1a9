//! `distlock doctor`: reads the store's settings and says what makes locks unsafe or slow.

use std::process::ExitCode;

use clap::Args;
use distlock::Severity;

/// Exit codes of `doctor`, by its worst finding (a store that cannot be reached is 69, a
/// bad URL 78, usage errors 2, as for every subcommand: see `crate::exit`).
pub(crate) const WARN: u8 = 3;
/// Some check failed: locks are not safe as deployed.
pub(crate) const FAIL: u8 = 4;

#[derive(Args, Debug)]
pub(crate) struct DoctorArgs {
    /// Lock URL (redis://…, zk://…, mysql://…).
    #[arg(long, env = "DISTLOCK_URL", hide_env_values = true, default_value_t = crate::default_url())]
    url: String,
}

pub(crate) async fn doctor(args: DoctorArgs) -> distlock::Result<ExitCode> {
    let locks = super::connect(&args.url).await?;
    let findings = super::inspector(&*locks)?.doctor().await?;
    println!(
        "distlock doctor: {} backend at {}",
        locks.backend_name(),
        distlock::settings::RedactedUrl::new(&args.url)
    );
    if findings.is_empty() {
        println!("PASS  nothing to check for this backend");
    }
    for f in &findings {
        println!("{:<4}  {}: {}", f.severity, f.check, f.detail);
        if let Some(fix) = &f.fix {
            println!("      fix: {fix}");
        }
    }
    Ok(
        match findings
            .iter()
            .map(|f| f.severity)
            .max()
            .unwrap_or(Severity::Pass)
        {
            Severity::Pass => ExitCode::SUCCESS,
            Severity::Warn => ExitCode::from(WARN),
            Severity::Fail => ExitCode::from(FAIL),
        },
    )
}
