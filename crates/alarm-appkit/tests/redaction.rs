//! A process whose logging is set up by `init_logging` never writes a registered secret: not in a log line, not in a panic's message (the test runs itself as that process).

use std::process::Command;

use secrecy::SecretString;

const CANARY: &str = "canary-4f1d2b9e-never-printed";

/// In the child: logging as the apps set it up, a secret read as a
/// setting, then a line and a panic that both carry it.
fn child() {
    let _logging =
        alarm_appkit::init_logging("info", alarm_appkit::LogFormat::Json, "redaction-test")
            .expect("logging");
    alarm_appkit::redact::register(&SecretString::from(CANARY));
    tracing::warn!(url = %format!("postgres://app:{CANARY}@db/alarms"), "a library formats a URL it was given");
    let handle = std::thread::spawn(|| panic!("a handler failed holding {CANARY}"));
    assert!(handle.join().is_err());
}

#[test]
fn secrets_are_scrubbed_from_log_lines_and_panics() {
    if std::env::var_os("REDACTION_CHILD").is_some() {
        child();
        return;
    }
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "secrets_are_scrubbed_from_log_lines_and_panics",
            "--nocapture",
        ])
        .env("REDACTION_CHILD", "1")
        .output()
        .expect("run the child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stderr.contains(CANARY) && !stdout.contains(CANARY),
        "{stderr}{stdout}"
    );
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["url"] == "postgres://app:[redacted]@db/alarms"),
        "{stderr}"
    );
    assert!(
        lines.iter().any(|l| l["message"] == "panicked"
            && l["panic"] == "a handler failed holding [redacted]"
            && l["at"].as_str().is_some_and(|a| a.contains("redaction.rs"))),
        "the panic is logged, scrubbed, with its place: {stderr}"
    );
}
