//! `distlock break`: a forced, fenced and signalled release of a stuck lock.

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Args;
use distlock::{LockError, LockName};

use super::human;

/// Exit code when the break was refused for want of `--yes` on a non-interactive stdin, or
/// declined at the prompt: a usage error, like clap's.
const USAGE: u8 = crate::exit::USAGE;

#[derive(Args, Debug)]
pub(crate) struct BreakArgs {
    /// Lock URL (redis://…, zk://…, mysql://…, memory://…; lock files cannot be broken).
    #[arg(long, env = "DISTLOCK_URL", hide_env_values = true, default_value_t = crate::default_url())]
    url: String,
    /// The lock to break.
    name: String,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

pub(crate) async fn break_lock(args: BreakArgs) -> distlock::Result<ExitCode> {
    let name = LockName::new(args.name.as_str())?;
    if !args.yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "distlock: breaking {:?} needs confirmation: pass --yes when stdin is not a terminal",
                name.as_str()
            );
            return Ok(ExitCode::from(USAGE));
        }
        if !confirm(&name)? {
            eprintln!("distlock: not broken");
            return Ok(ExitCode::from(USAGE));
        }
    }
    let locks = super::connect(&args.url).await?;
    match super::inspector(&*locks)?.break_lock(&name).await? {
        Some(holder) => {
            let who = match (&holder.meta.host, holder.meta.pid) {
                (Some(h), Some(p)) => format!(" held by {h}:{p}"),
                _ => holder
                    .session
                    .as_ref()
                    .map(|s| format!(" held by session {s}"))
                    .unwrap_or_default(),
            };
            let age = holder
                .age
                .map(|a| format!(" for {}", human(a)))
                .unwrap_or_default();
            println!(
                "broke {:?}{who}{age}; its holder is told it lost the lock, and the next \
                 holder gets a larger fencing token",
                holder.name
            );
        }
        None => println!("{:?} was not held; nothing broken", name.as_str()),
    }
    Ok(ExitCode::SUCCESS)
}

fn confirm(name: &LockName) -> distlock::Result<bool> {
    eprint!(
        "Break {:?}? Its holder may still be running its critical section. [y/N] ",
        name.as_str()
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| LockError::config("cannot read the confirmation").with_source(e))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}
