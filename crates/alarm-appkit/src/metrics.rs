//! The apps' Prometheus metrics: one global recorder per process (the `metrics` facade that the libraries record into), its text exposition for `/metrics` on the ops listener, and the build and process gauges refreshed at each scrape.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How often the recorded histogram samples are folded into their
/// buckets (the exporter's own default period).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Bucket bounds, in seconds, of every `*_seconds` histogram: from a
/// millisecond (an API answer) to a minute (a late ring), with edges at the
/// alerts' thresholds (0.2 s and 2 s for the API, 1 s and 5 s for rings).
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The `Content-Type` of [`Metrics::render`]'s text (Prometheus text
/// exposition 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Something that sets gauges from state it reads when scraped (a pool's
/// connections, a sweep of recent users).
type Probe = Box<dyn Fn() + Send + Sync>;

/// The process's recorder, rendered on each scrape.
#[derive(Clone)]
pub struct Metrics {
    /// `None` when metrics are off (`METRICS=false`): nothing is recorded.
    handle: Option<PrometheusHandle>,
    probes: std::sync::Arc<std::sync::Mutex<Vec<Probe>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Installs the process-wide recorder for `app` and sets `build_info`
    /// (the version, the git commit given as `ALARM_GIT_SHA` when the
    /// binary was built, and the time-zone database's release).
    ///
    /// # Errors
    /// A recorder is installed already (once per process).
    pub fn install(app: &'static str, tzdb: &str) -> Result<Self, String> {
        Self::new(app, tzdb, true)
    }

    /// [`Metrics::install`] when `enabled`; otherwise no recorder is
    /// installed, so every `metrics` macro in the process is a no-op (what
    /// the benchmarks compare against).
    ///
    /// # Errors
    /// A recorder is installed already (once per process).
    pub fn new(app: &'static str, tzdb: &str, enabled: bool) -> Result<Self, String> {
        if !enabled {
            return Ok(Self {
                handle: None,
                probes: std::sync::Arc::default(),
            });
        }
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
            .map_err(|e| e.to_string())?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder)
            .map_err(|_| "a metrics recorder is installed already".to_owned())?;
        // Histograms keep each raw sample until upkeep folds it into the
        // buckets: without it they grow without bound between scrapes, and
        // for ever when nobody scrapes. Rendering folds them too; this
        // thread bounds the growth to UPKEEP_EVERY's worth.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            })
            .map_err(|e| format!("cannot start the metrics upkeep thread: {e}"))?;
        metrics::gauge!(
            "build_info",
            "app" => app,
            "version" => env!("CARGO_PKG_VERSION"),
            "git_sha" => option_env!("ALARM_GIT_SHA").unwrap_or("unknown"),
            "tzdb" => tzdb.to_owned(),
        )
        .set(1.0);
        Ok(Self {
            handle: Some(handle),
            probes: std::sync::Arc::default(),
        })
    }

    /// Runs `probe` before each rendering, to set the gauges it reads.
    pub fn on_scrape(&self, probe: impl Fn() + Send + Sync + 'static) {
        self.probes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(probe));
    }

    /// The Prometheus text exposition of everything recorded, with the
    /// process gauges read now; `None` when metrics are off.
    pub fn render(&self) -> Option<String> {
        let handle = self.handle.as_ref()?;
        process_gauges();
        for probe in self.probes.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            probe();
        }
        Some(handle.render())
    }
}

/// The CPU time of a process (this one with `None`) so far: user plus
/// system time of every thread, in USER_HZ ticks (10 ms on the Linux
/// architectures this ships for); `None` off Linux or for a process gone.
/// The benchmarks measure the servers they start with it.
pub fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(
        || "/proc/self/stat".to_owned(),
        |p| format!("/proc/{p}/stat"),
    );
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields 14 and 15, counted after the parenthesised name (which may
    // hold spaces and parentheses of its own).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// `process_resident_memory_bytes`, `process_cpu_seconds_total` and
/// `process_open_fds`, read from `/proc` (Linux; elsewhere they are left
/// out).
fn process_gauges() {
    if let Some(kib) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
    {
        metrics::gauge!("process_resident_memory_bytes").set(kib * 1024.0);
    }
    // Fields 14 and 15 of /proc/self/stat, after the parenthesised name:
    // user and system time of every thread, in USER_HZ ticks (100 a second
    // on x86_64 and aarch64, the architectures this ships for). Set as a
    // gauge of seconds with the ticks' precision (a `metrics` counter holds
    // whole numbers only); `rate()` reads it as the counter it is.
    if let Some(ticks) = cpu_ticks(None) {
        metrics::gauge!("process_cpu_seconds_total").set(ticks as f64 / 100.0);
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(fds.count() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_carries_build_process_and_recorded_metrics() {
        let m = Metrics::install("alarm-test", "2026a").expect("install");
        metrics::counter!("alarms_created_total").increment(2);
        metrics::histogram!("api_response_duration_seconds", "route" => "/x", "status_class" => "2xx")
            .record(0.003);
        let text = m.render().expect("on");
        for line in [
            "alarms_created_total 2",
            "api_response_duration_seconds_bucket{route=\"/x\",status_class=\"2xx\",le=\"0.005\"} 1",
            "api_response_duration_seconds_count{route=\"/x\",status_class=\"2xx\"} 1",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(text.contains("build_info{app=\"alarm-test\""), "{text}");
        m.on_scrape(|| metrics::gauge!("probed").set(7.0));
        assert!(
            m.render().expect("on").lines().any(|l| l == "probed 7"),
            "a probe runs at each scrape"
        );
        assert!(text.contains("tzdb=\"2026a\""), "{text}");
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
        ] {
            assert!(text.contains(name), "{name} in:\n{text}");
        }
        assert!(
            Metrics::install("again", "x").is_err(),
            "one recorder per process"
        );
        let off = Metrics::new("off", "x", false).expect("off");
        assert_eq!(off.render(), None, "off: nothing to serve");
    }
}
