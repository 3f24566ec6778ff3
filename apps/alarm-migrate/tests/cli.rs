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
        "reseal",
        "DATA_ENCRYPTION_KEYS",
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

/// `reseal` on the embedded default makes its owner-only data key on first
/// use and reports what it sealed; a malformed key is refused by name,
/// and PostgreSQL without keys is refused saying why.
#[test]
fn reseal_seals_with_the_data_keys() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("reseal");
    let data = dir.join("data");
    let (code, _, err) = run(bin().arg("up").env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    let (code, text, err) = run(bin().arg("reseal").env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("webhook secrets: 0 sealed"), "{text}");
    let key = data.join("data-key");
    let mode = std::fs::metadata(&key)
        .expect("the data key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read_to_string(&key).expect("key");
    let (code, _, err) = run(bin().arg("reseal").env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        std::fs::read_to_string(&key).expect("key"),
        first,
        "made once"
    );
    let (code, _, err) = run(bin()
        .arg("reseal")
        .env("DATA_DIR", &data)
        .env("DATA_ENCRYPTION_KEYS", "not a key"));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("DATA_ENCRYPTION_KEYS"), "{err}");
    let (code, _, err) = run(bin()
        .arg("reseal")
        .env("DATABASE_URL", "postgres://alarm@127.0.0.1:1/alarms"));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("DATA_ENCRYPTION_KEYS is required"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
