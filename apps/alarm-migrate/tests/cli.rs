//! The `alarm-migrate` binary as an operator meets it: `--help` from the same declarations as the servers, `--print-config` with the password redacted, a bad value refused by name, and up/status/down on the embedded default's SQLite file.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_alarm-migrate"));
    // Only what each test sets: the developer's own DATABASE_URL must not leak in.
    c.env_clear();
    c
}

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("alarm-migrate-{label}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(c: &mut Command) -> (Option<i32>, String, String) {
    let out = c.output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_commands_and_every_setting() {
    let (code, help, _) = run(bin().arg("--help"));
    assert_eq!(code, Some(0));
    for word in [
        "up",
        "down",
        "status",
        "fresh",
        "--config",
        "--print-config",
        "DATA_DIR",
        "DB_MAX_CONNECTIONS",
        "DATABASE_URL",
        "DATABASE_URL_FILE",
        "[default: data]",
    ] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
}

#[test]
fn print_config_redacts_and_bad_values_are_named() {
    let (code, text, err) = run(bin().arg("--print-config").env(
        "DATABASE_URL",
        "postgres://alarm:hunter2-password@db.internal:5432/alarms",
    ));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        !text.contains("hunter2") && text.contains("db.internal"),
        "{text}"
    );
    let dir = temp_dir("urlfile");
    let file = dir.join("url");
    std::fs::write(&file, "postgres://a:file-secret@db.file:5432/x\n").expect("write");
    let (code, text, err) = run(bin().arg("--print-config").env("DATABASE_URL_FILE", &file));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("db.file") && !text.contains("file-secret"),
        "{text}"
    );
    for (var, value) in [
        ("DB_MAX_CONNECTIONS", "0"),
        ("DATABASE_URL", "mysql://h/db"),
    ] {
        let (code, _, err) = run(bin().arg("status").env(var, value));
        assert_eq!(code, Some(2), "{var}: {err}");
        assert!(err.contains(var), "{var}: {err}");
    }
    let (code, _, err) = run(bin().args(["down", "0"]));
    assert_eq!(code, Some(2), "down takes at least one step: {err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn up_status_down_on_the_embedded_default() {
    let dir = temp_dir("embedded");
    let data = dir.join("data");
    let status = |dir: &PathBuf| run(bin().arg("status").env("DATA_DIR", dir));
    let (code, text, err) = status(&data);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("pending") && !text.contains("applied "),
        "{text}"
    );
    let (code, text, err) = run(bin().env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "`up` is the default: {err}");
    assert!(text.contains("all migrations applied"), "{text}");
    assert!(data.join("alarms.db").exists());
    let (_, text, _) = status(&data);
    assert!(text.contains(", 0 pending"), "{text}");
    let (code, text, err) = run(bin().args(["down", "1"]).env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("rolled back 1"), "{text}");
    let (_, text, _) = status(&data);
    assert!(text.contains(", 1 pending"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}
