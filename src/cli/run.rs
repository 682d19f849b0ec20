//! `weir run`: run pipelines until their sources end or a signal asks to
//! stop; in-flight batches are finished and delivered first.

use super::Outcome;
use crate::config::{ConfigError, Pipeline};
use crate::pipeline::reload::Reloader;
use crate::pipeline::{start, StartOptions, Stopper};
use anyhow::Context;
use std::path::PathBuf;
use std::sync::Arc;

/// Loads every file first (all problems reported together), then runs the
/// pipelines side by side on one shared runtime.
pub fn run(files: &[PathBuf], admin: Option<std::net::SocketAddr>) -> anyhow::Result<Outcome> {
    let (pipelines, errors): (Vec<_>, Vec<_>) = files
        .iter()
        .map(|f| Pipeline::load(f))
        .partition(Result::is_ok);
    let errors: Vec<ConfigError> = errors.into_iter().filter_map(Result::err).collect();
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{e}");
        }
        anyhow::bail!(
            "{} invalid pipeline file(s); nothing was started",
            errors.len()
        );
    }
    let pipelines: Vec<Pipeline> = pipelines.into_iter().filter_map(Result::ok).collect();
    let runtime = super::runtime()?;
    let tokio = super::tokio()?;
    let result = tokio.block_on(async move {
        let metrics_addr = pipelines.iter().find_map(|p| p.metrics);
        let metrics = if metrics_addr.is_some() || admin.is_some() {
            let h = crate::metrics::install_exporter(metrics_addr).context("cannot serve metrics")?;
            if let Some(addr) = metrics_addr {
                tracing::info!("metrics on http://{addr}/metrics");
            }
            Some(h)
        } else {
            None
        };
        let mut runs = Vec::new();
        for p in pipelines {
            let run = start(runtime.clone(), &p, StartOptions::default())
                .await
                .with_context(|| format!("pipeline {} ({})", p.name, p.file.display()))?;
            tracing::info!(pipeline = %p.name, stages = p.stages.len(), threads = p.workers.threads, delivery = ?p.delivery, "running");
            runs.push((p, run));
        }
        let stoppers: Vec<Stopper> = runs.iter().map(|(_, r)| r.stopper()).collect();
        tokio::spawn(stop_on_signal(stoppers.clone()));
        if let Some(addr) = admin {
            let admin = crate::admin::Admin {
                pipelines: Arc::new(runs.iter().map(|(_, r)| r.into()).collect()),
                token: std::env::var("WEIR_ADMIN_TOKEN").ok().filter(|t| !t.is_empty()),
                metrics,
            };
            let bound = crate::admin::serve(addr, admin).await?;
            tracing::info!("admin API on http://{bound}");
        }
        tokio::spawn(reload_on_hangup(
            runs.iter().map(|(p, r)| (p.clone(), r.reloader().clone())).collect(),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for (p, run) in runs {
            tasks.spawn(async move { (p.name, run.finished().await) });
        }
        let mut failed = 0;
        while let Some(joined) = tasks.join_next().await {
            match joined? {
                (name, Ok(r)) => tracing::info!(pipeline = %name, events_in = r.events_in, events_out = r.events_out, dead_letters = r.dead_letters, "finished"),
                (name, Err(e)) => {
                    tracing::error!(pipeline = %name, "stopped: {e}");
                    failed += 1;
                    stoppers.iter().for_each(Stopper::stop);
                }
            }
        }
        if failed > 0 {
            anyhow::bail!("{failed} pipeline(s) failed");
        }
        Ok(Outcome::Success)
    });
    // A blocking read of stdin cannot be interrupted: do not wait for it.
    tokio.shutdown_background();
    result
}

/// On SIGHUP every pipeline file is read again; each stage whose plugin,
/// `config`, limits or grants changed swaps to the new version at its next
/// batch boundary. A file with problems changes nothing.
async fn reload_on_hangup(running: Vec<(Pipeline, Reloader)>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; pipeline files are not re-read");
        return;
    };
    while hup.recv().await.is_some() {
        for (old, reloader) in &running {
            let new = match Pipeline::load(&old.file) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(pipeline = %old.name, "SIGHUP: the file has problems; nothing changed\n{e}");
                    continue;
                }
            };
            if new.source != old.source
                || new.sink != old.sink
                || new.dead_letter != old.dead_letter
            {
                tracing::warn!(pipeline = %old.name, "SIGHUP: a changed source or sink takes a restart; the stages are reloaded");
            }
            let names: Vec<String> = new.stages.iter().map(|s| s.name.clone()).collect();
            let restructure = names != reloader.stages();
            for stage in new.stages.clone() {
                if !reloader.stages().contains(&stage.name) {
                    continue;
                }
                let name = stage.name.clone();
                match reloader.reconfigure(stage).await {
                    Ok(d) if d.unchanged => {}
                    Ok(d) => {
                        tracing::info!(pipeline = %old.name, stage = %name, digest = %d.digest, "SIGHUP: stage swapped")
                    }
                    Err(e) => tracing::error!(pipeline = %old.name, stage = %name, "SIGHUP: {e}"),
                }
            }
            if restructure {
                match reloader.restructure(new.stages).await {
                    Ok(()) => {
                        tracing::info!(pipeline = %old.name, stages = ?names, "SIGHUP: stages now")
                    }
                    Err(e) => {
                        tracing::error!(pipeline = %old.name, "SIGHUP: the stages stay as they were: {e}")
                    }
                }
            }
        }
    }
}

/// The first SIGINT or SIGTERM asks every pipeline to stop after its
/// in-flight batches; a second one exits at once.
async fn stop_on_signal(stop: Vec<Stopper>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot install signal handlers; stop with SIGKILL");
        return;
    };
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    tracing::info!("stopping: finishing in-flight batches (signal again to exit at once)");
    stop.iter().for_each(Stopper::stop);
    tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} }
    tracing::warn!("exiting without finishing in-flight batches; they will be re-read");
    std::process::exit(130);
}
