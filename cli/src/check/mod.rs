//! `distlock check`: a fault campaign against a deployment (or throwaway servers) and a
//! checker of the histories it leaves. See docs/RELIABILITY.md for what it found.
//!
//! One job per file: [`args`] (command line), [`target`] (the backend and its backstop),
//! [`servers`] (throwaway servers), [`workers`] and [`worker`] (the contending processes),
//! [`register`] (the fenced resource), [`proxy`] and [`nemesis`] (faults), [`history`]
//! (the JSON lines files), [`checker`] (pure analysis), [`report`] (tables and excerpts).

pub mod args;
pub mod checker;
pub mod history;
pub mod nemesis;
pub mod proxy;
pub mod register;
pub mod report;
pub mod servers;
pub mod target;
pub mod worker;
pub mod workers;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use distlock::{LockError, LockExt};

use args::{BackendName, CheckArgs, Fault};
use checker::Input;
use history::{mono_ns, read_lines, Log, NemesisEvent};
use target::{HostsOfUrl, Target};

/// `--quick`: per backend.
const QUICK_DURATION: Duration = Duration::from_secs(25);
/// How long the first hold may take (a JVM-backed server, a cold connection pool).
const WARM_UP: Duration = Duration::from_secs(30);
/// How long stopping workers may finish their hold and release.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// Runs the campaign on every chosen backend, prints the reports; exit code 1 on any
/// violation.
///
/// # Cancel safety
/// Not meant to be cancelled: it is the command's whole run.
pub async fn check(mut args: CheckArgs) -> Result<ExitCode, LockError> {
    if args.quick {
        args.duration = QUICK_DURATION;
        args.server_faults = true;
        if args.processes == 4 {
            args.processes = 3;
        }
        if args.url.is_none() && args.backend.is_empty() {
            args.backend = vec![
                BackendName::File,
                BackendName::Redis,
                BackendName::Zookeeper,
                BackendName::Mariadb,
            ];
        }
    }
    if !(2..=64).contains(&args.processes) {
        return Err(LockError::config("--processes must be between 2 and 64"));
    }
    if args.duration.is_zero() {
        return Err(LockError::config("--duration must be above zero"));
    }
    if args.url.is_none() && args.backend.is_empty() {
        args.url = std::env::var("DISTLOCK_URL").ok().filter(|u| !u.is_empty());
    }
    if args.url.is_none() && args.backend.is_empty() {
        return Err(LockError::config(
            "give --url URL (your deployment), --backend NAME (a throwaway server) or --quick",
        ));
    }
    let mut reports = Vec::new();
    if let Some(url) = &args.url {
        let target = Target::from_url(url, args.ttl);
        reports.push(campaign(&target, &args).await?);
    }
    for &backend in &args.backend {
        let ttl = args.ttl;
        let target = tokio::task::spawn_blocking(move || servers::start(backend, ttl))
            .await
            .map_err(|e| LockError::backend("server start").with_source(e))?
            .map_err(|e| LockError::connection("cannot start a throwaway server").with_source(e))?;
        reports.push(campaign(&target, &args).await?);
    }
    println!("\n{}", report::LEGEND);
    if let Some(path) = &args.json {
        let json = serde_json::to_vec_pretty(&reports)
            .map_err(|e| LockError::backend("cannot encode the report").with_source(e))?;
        std::fs::write(path, json).map_err(|e| {
            LockError::config(format!("cannot write {}", path.display())).with_source(e)
        })?;
    }
    let failed = reports.iter().filter(|r| r.violations > 0).count();
    if failed > 0 {
        println!(
            "distlock check: FAIL on {failed} of {} backend(s)",
            reports.len()
        );
        return Ok(ExitCode::from(1));
    }
    println!("distlock check: PASS on {} backend(s)", reports.len());
    Ok(ExitCode::SUCCESS)
}

fn io_error(what: &str) -> impl Fn(std::io::Error) -> LockError + '_ {
    move |e| LockError::backend(what.to_string()).with_source(e)
}

/// One backend's campaign: workers, proxy, nemesis phases, stop, final probe, checker.
async fn campaign(target: &Target, args: &CheckArgs) -> Result<report::Report, LockError> {
    // A bad URL or an unreachable store fails here, at once and with the backend's own
    // error, rather than in every worker.
    match tokio::time::timeout(Duration::from_secs(15), distlock::connect(&target.url)).await {
        Ok(Ok(_client)) => {}
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(LockError::connection(format!(
                "{}: no connection within 15 s",
                target.label
            )))
        }
    }
    let dir = match &args.dir {
        Some(d) => d.join(target.label.replace(['/', ':', '@', '?'], "_")),
        None => std::env::temp_dir().join(format!(
            "distlock-check-{}-{}",
            std::process::id(),
            mono_ns()
        )),
    };
    std::fs::create_dir_all(&dir).map_err(io_error("cannot create the history directory"))?;
    eprintln!(
        "distlock check: {} (histories in {})",
        target.label,
        dir.display()
    );

    let hosts = HostsOfUrl::parse(&target.url).map_err(io_error("cannot resolve the URL"))?;
    let proxy = match &hosts {
        Some(h) => Some(
            proxy::Proxy::start(h.upstreams.clone())
                .await
                .map_err(io_error("cannot start the proxy"))?,
        ),
        None => None,
    };
    let worker_url = match (&hosts, &proxy) {
        (Some(h), Some(p)) => h.with_host(p.addr()),
        _ => target.url.clone(),
    };
    let urls: Vec<String> = (0..args.processes)
        .map(|slot| {
            if args.unsafe_split_file_locks_for_tests {
                format!("{}/split-{slot}", worker_url.trim_end_matches('/'))
            } else {
                worker_url.clone()
            }
        })
        .collect();

    let chosen = if args.faults.is_empty() {
        Fault::ALL.to_vec()
    } else {
        args.faults.clone()
    };
    let mut phases = Vec::new();
    let mut skipped = Vec::new();
    for fault in chosen {
        match target.supports(fault, args.server_faults) {
            Ok(()) => phases.push(fault),
            Err(why) => skipped.push((fault.name().to_string(), why.to_string())),
        }
    }
    let per_phase = args.duration / u32::try_from(phases.len().max(1)).unwrap_or(1);

    let mut workers = workers::Workers::start(workers::WorkerPlan {
        urls: urls.clone(),
        name: args.name.clone(),
        ttl: args.ttl,
        dir: dir.clone(),
    })
    .map_err(io_error("cannot start the workers"))?;
    let warm = wait_first_hold(&dir).await;
    let mut nemesis = nemesis::Nemesis {
        target,
        proxy: proxy.as_ref(),
        workers: &mut workers,
        log: Log::open(&dir.join("nemesis.jsonl")).map_err(io_error("nemesis log"))?,
    };
    let mut outcome = warm;
    if outcome.is_ok() {
        for &fault in &phases {
            if let Err(e) = nemesis.phase(fault, per_phase).await {
                outcome = Err(format!("the nemesis failed in phase {}: {e}", fault.name()));
                break;
            }
        }
    }
    let _ = nemesis.log.append(&NemesisEvent::End { mono: mono_ns() });
    drop(nemesis);
    let killed_at_stop = workers.stop_all(STOP_GRACE).await;
    drop(proxy);
    if let Err(why) = outcome {
        return Err(LockError::backend(format!(
            "{}: {why} (histories and worker stderr in {})",
            target.label,
            dir.display()
        )));
    }
    let probe_urls: Vec<String> = if args.unsafe_split_file_locks_for_tests {
        urls.iter()
            .map(|u| u.replace(&worker_url, &target.url))
            .collect()
    } else {
        vec![target.url.clone()]
    };
    let mut final_probe = Ok(());
    for url in &probe_urls {
        if let Err(e) = probe(url, &args.name, target.backstop).await {
            final_probe = Err(e);
        }
    }
    if !killed_at_stop.is_empty() {
        eprintln!(
            "distlock check: worker(s) {killed_at_stop:?} did not stop within {STOP_GRACE:?}"
        );
    }

    let input = load(&dir, target, final_probe).map_err(io_error("cannot read the histories"))?;
    let findings = checker::check(&input);
    let mut report = report::report(
        &target.label,
        &input,
        &findings,
        args.processes,
        args.duration,
        skipped,
        dir.display().to_string(),
    );
    let keep = report.violations > 0 || args.dir.is_some();
    if !keep && std::fs::remove_dir_all(&dir).is_ok() {
        report.histories = "removed (no violation; keep them with --dir)".to_string();
    }
    print!("{}", report::text(&report));
    Ok(report)
}

/// Waits until some worker logged a hold; else says why none could.
async fn wait_first_hold(dir: &Path) -> Result<(), String> {
    let start = tokio::time::Instant::now();
    while start.elapsed() < WARM_UP {
        for path in histories(dir) {
            let events: Vec<history::WorkerEvent> = read_lines(&path).unwrap_or_default();
            if events
                .iter()
                .any(|e| matches!(e, history::WorkerEvent::Acquired { .. }))
            {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let why = histories(dir)
        .iter()
        .flat_map(|p| read_lines::<history::WorkerEvent>(p).unwrap_or_default())
        .find_map(|e| match e {
            history::WorkerEvent::AcquireFailed { error, .. } => Some(error),
            _ => None,
        })
        .unwrap_or_else(|| "no error logged".to_string());
    Err(format!(
        "no worker took the lock within {WARM_UP:?}; first error: {why}"
    ))
}

/// After every worker stopped, the lock must be free within the backstop.
async fn probe(url: &str, name: &str, backstop: Duration) -> Result<(), String> {
    let limit = backstop + Duration::from_secs(5);
    let client = distlock::connect(url)
        .await
        .map_err(|e| format!("final probe cannot connect: {e}"))?;
    let guard = client
        .acquire_timeout(name, limit)
        .await
        .map_err(|e| format!("still held {limit:?} after every worker stopped: {e}"))?;
    guard
        .release()
        .await
        .map_err(|e| format!("final probe cannot release: {e}"))
}

fn histories(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("worker-") && n.ends_with(".jsonl"))
                })
                .collect()
        })
        .unwrap_or_default();
    paths.sort();
    paths
}

/// Reads every history of a campaign directory into the checker's input.
fn load(dir: &Path, target: &Target, final_probe: Result<(), String>) -> std::io::Result<Input> {
    let nemesis: Vec<NemesisEvent> = read_lines(&dir.join("nemesis.jsonl"))?;
    let (faults, phases, end) = checker::nemesis_of(&nemesis);
    let mut holds = Vec::new();
    for path in histories(dir) {
        let id = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("worker-"))
            .and_then(|n| n.strip_suffix(".jsonl"))
            .unwrap_or("?")
            .to_string();
        holds.extend(checker::holds_of(&id, &read_lines(&path)?, &faults));
    }
    let register_log = register::Register::log_path(&dir.join("register"));
    let register = if register_log.exists() {
        read_lines(&register_log)?
    } else {
        Vec::new()
    };
    Ok(Input {
        kind: Some(target.kind),
        backstop: target.backstop,
        holds,
        register,
        faults,
        phases,
        end: end.unwrap_or_else(mono_ns),
        held_at_end: final_probe.err(),
    })
}
