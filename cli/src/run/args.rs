//! `distlock run`'s arguments, and the plan they resolve to.

use std::time::Duration;

use clap::Args;
use distlock::Wait;

use crate::duration;

const EXAMPLES: &str = "\
Examples:
  # one nightly report across all hosts; give up at once if another host runs it
  distlock run --url redis://cache:6379/0 -n nightly-report -- ./report.sh

  # wait up to 30 s for the lock; a shell command line with -c
  distlock run -w 30s deploy -c 'make deploy && ./notify.sh'

  # the URL and its password from the environment, never on the command line
  DISTLOCK_URL=mysql://app@db:3306/locks DISTLOCK_PASSWORD_FILE=/run/secrets/db \\
    distlock run billing -- ./charge-cards

The command runs in its own process group, which distlock owns: when the lock is lost,
the group gets SIGTERM and, after --kill-after, SIGKILL; when distlock dies (any signal,
SIGKILL too) the group is stopped the same way; processes the command leaves behind are
stopped when it exits. The lock is released only once the last of them is gone.
SIGINT, SIGTERM and SIGHUP are forwarded to the group (a second one sends SIGKILL); while
waiting for the lock they cancel the wait, leaving nothing held. The command gets
DISTLOCK_LOCK_NAME and, where the backend has fencing, DISTLOCK_FENCING_TOKEN.
It can write to the terminal but not read from it (it is not the foreground group).";

#[derive(Args, Debug)]
#[command(
    override_usage = "distlock run [OPTIONS] NAME -- COMMAND [ARGS]...\n       \
                      distlock run [OPTIONS] NAME -c 'SHELL COMMAND'",
    after_help = format!("{EXAMPLES}\n\n{}\n\n{}", crate::exit::HELP, crate::store::ENV_HELP),
)]
pub(crate) struct RunArgs {
    /// The lock's name: any non-empty text.
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// The command to run and its arguments (after `--`).
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<String>,
    /// The lock's name, as an option (instead of NAME; then put `--` before COMMAND).
    #[arg(long = "name", value_name = "NAME")]
    name_option: Option<String>,
    /// Runs this shell command line with `/bin/sh -c` instead of COMMAND.
    #[arg(short = 'c', long = "command", value_name = "SHELL COMMAND")]
    shell: Option<String>,
    /// Lock URL: file:///dir, redis://host:port/db, zk://host:port, mysql://user@host/db.
    #[arg(
        long,
        env = "DISTLOCK_URL",
        hide_env_values = true,
        default_value_t = crate::store::default_url()
    )]
    url: String,
    /// How long to wait for the lock (500ms, 30s, 2m; a bare number is seconds;
    /// 0 means one attempt). Waits forever when omitted.
    #[arg(short, long, value_name = "DURATION", value_parser = duration::parse,
          allow_hyphen_values = true, conflicts_with = "nonblock")]
    wait: Option<Duration>,
    /// Fails at once when the lock is held elsewhere (same as --wait 0).
    #[arg(short, long)]
    nonblock: bool,
    /// Lease of backends whose holds expire (Redis); renewed every third of it while the
    /// command runs. Default 30s.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse_positive,
          allow_hyphen_values = true)]
    ttl: Option<Duration>,
    /// Grace period between SIGTERM and SIGKILL when the command must stop.
    #[arg(long, value_name = "DURATION", value_parser = duration::parse,
          allow_hyphen_values = true, default_value = "5s")]
    kill_after: Duration,
    /// Exit status when the lock is not acquired within --wait.
    #[arg(short = 'E', long, value_name = "CODE", default_value_t = crate::exit::NOT_ACQUIRED)]
    conflict_exit_code: u8,
}

/// What `distlock run` was asked to do, checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) name: String,
    /// The program and its arguments (`/bin/sh -c …` for `-c`).
    pub(crate) argv: Vec<String>,
    pub(crate) url: String,
    pub(crate) wait: Wait,
    pub(crate) ttl: Option<Duration>,
    pub(crate) kill_after: Duration,
    pub(crate) conflict_exit_code: u8,
}

impl RunArgs {
    /// The plan, or a usage error's message.
    pub(crate) fn plan(self) -> Result<Plan, String> {
        let mut positional = self.command;
        let name = match (self.name_option, self.name) {
            // With --name, what clap took for NAME is the command's first word.
            (Some(name), first) => {
                if let Some(first) = first {
                    positional.insert(0, first);
                }
                name
            }
            (None, Some(name)) => name,
            (None, None) => return Err("the lock NAME is missing".to_string()),
        };
        if name.is_empty() {
            return Err("the lock NAME must not be empty".to_string());
        }
        let argv = match (self.shell, positional.is_empty()) {
            (Some(line), true) => vec!["/bin/sh".to_string(), "-c".to_string(), line],
            (Some(_), false) => {
                return Err("give either -c 'SHELL COMMAND' or -- COMMAND, not both".to_string())
            }
            (None, false) => positional,
            (None, true) => {
                return Err("the COMMAND is missing: distlock run NAME -- COMMAND".to_string())
            }
        };
        let wait = match (self.nonblock, self.wait) {
            (true, _) => Wait::Try,
            (false, None) => Wait::Forever,
            (false, Some(d)) if d.is_zero() => Wait::Try,
            (false, Some(d)) => Wait::Up(d),
        };
        Ok(Plan {
            name,
            argv,
            url: self.url,
            wait,
            ttl: self.ttl,
            kill_after: self.kill_after,
            conflict_exit_code: self.conflict_exit_code,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let cli = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.run.plan()
    }

    #[test]
    fn name_and_command_in_every_spelling() {
        for args in [
            &["job", "--", "echo", "-n", "hi"][..],
            &["job", "echo", "-n", "hi"],
            &["--name", "job", "--", "echo", "-n", "hi"],
            &["--name=job", "--", "echo", "-n", "hi"],
        ] {
            let p = plan(args).unwrap();
            assert_eq!(p.name, "job", "{args:?}");
            assert_eq!(p.argv, ["echo", "-n", "hi"], "{args:?}");
        }
        let p = plan(&["-w", "500ms", "job", "-c", "exit 3"]).unwrap();
        assert_eq!(p.argv, ["/bin/sh", "-c", "exit 3"]);
        assert_eq!(p.wait, Wait::Up(Duration::from_millis(500)));
    }

    #[test]
    fn waits() {
        assert_eq!(plan(&["j", "true"]).unwrap().wait, Wait::Forever);
        assert_eq!(plan(&["-n", "j", "true"]).unwrap().wait, Wait::Try);
        assert_eq!(plan(&["-w", "0", "j", "true"]).unwrap().wait, Wait::Try);
        assert_eq!(
            plan(&["--wait", "2m", "j", "true"]).unwrap().wait,
            Wait::Up(Duration::from_secs(120))
        );
        assert!(plan(&["-n", "-w", "1s", "j", "true"]).is_err());
    }

    #[test]
    fn missing_or_contradictory_parts_are_usage_errors() {
        for args in [
            &[][..],
            &["job"],
            &["", "true"],
            &["job", "-c", "true", "--", "false"],
            &["-w", "-1s", "job", "true"],
            &["-w", "nan", "job", "true"],
            &["--ttl", "0s", "job", "true"],
            &["--kill-after", "soon", "job", "true"],
            &["-E", "300", "job", "true"],
        ] {
            assert!(plan(args).is_err(), "{args:?} was accepted");
        }
    }
}
