//! `distlock holders`: who holds which lock.

use std::process::ExitCode;

use clap::Args;
use distlock::Holder;
use serde_json::json;

use super::human;

#[derive(Args, Debug)]
pub(crate) struct HoldersArgs {
    /// Lock URL (file:///dir, redis://…, zk://…, mysql://…).
    #[arg(long, env = "DISTLOCK_URL", hide_env_values = true, default_value_t = crate::default_url())]
    url: String,
    /// Only locks whose name starts with this.
    #[arg(default_value = "")]
    prefix: String,
    /// One JSON array on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

pub(crate) async fn holders(args: HoldersArgs) -> distlock::Result<ExitCode> {
    let locks = super::connect(&args.url).await?;
    let mut found = super::inspector(&*locks)?.holders(&args.prefix).await?;
    found.sort_by(|a, b| a.name.cmp(&b.name));
    if args.json {
        let rows: Vec<_> = found.iter().map(to_json).collect();
        println!("{}", serde_json::Value::Array(rows));
    } else if found.is_empty() {
        println!("no lock held{}", prefix_note(&args.prefix));
    } else {
        print_table(&found);
    }
    Ok(ExitCode::SUCCESS)
}

fn prefix_note(prefix: &str) -> String {
    if prefix.is_empty() {
        String::new()
    } else {
        format!(" under {prefix:?}")
    }
}

fn to_json(h: &Holder) -> serde_json::Value {
    json!({
        "name": h.name,
        "owner_token": h.owner_token,
        "fencing_token": h.fencing_token,
        "age_ms": h.age.map(|d| d.as_millis() as u64),
        "time_left_ms": h.time_left.map(|d| d.as_millis() as u64),
        "host": h.meta.host,
        "pid": h.meta.pid,
        "label": h.meta.label,
        "session": h.session,
    })
}

fn print_table(found: &[Holder]) {
    let dash = || "-".to_string();
    let rows: Vec<[String; 7]> = found
        .iter()
        .map(|h| {
            [
                h.name.clone(),
                h.fencing_token.map_or_else(dash, |t| t.to_string()),
                h.age.map_or_else(dash, human),
                h.time_left.map_or_else(dash, human),
                match (&h.meta.host, h.meta.pid) {
                    (Some(host), Some(pid)) => format!("{host}:{pid}"),
                    (Some(host), None) => host.clone(),
                    (None, Some(pid)) => format!("pid {pid}"),
                    (None, None) => dash(),
                },
                h.meta.label.clone().unwrap_or_else(dash),
                h.session.clone().unwrap_or_else(dash),
            ]
        })
        .collect();
    let header = ["NAME", "FENCE", "AGE", "LEFT", "HOLDER", "LABEL", "SESSION"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
