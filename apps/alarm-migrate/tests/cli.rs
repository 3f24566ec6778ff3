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
    let check = |dir: &PathBuf| run(bin().args(["status", "--check"]).env("DATA_DIR", dir));
    let (code, _, err) = check(&data);
    assert_eq!(
        code,
        Some(0),
        "nothing pending: the switch may go on: {err}"
    );
    let (code, text, err) = run(bin().args(["down", "1"]).env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains("rolled back 1"), "{text}");
    let (_, text, _) = status(&data);
    assert!(text.contains(", 1 pending"), "{text}");
    let (code, _, err) = check(&data);
    assert_eq!(code, Some(1), "one pending: the switch waits");
    assert!(
        err.contains("1 migration(s) pending") && err.contains("alarm-migrate up"),
        "{err}"
    );
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

/// A fake backup set from long ago, the files retention must remove.
fn old_set(dir: &std::path::Path, stamp: &str) -> Vec<PathBuf> {
    let names = [
        format!("alarm-{stamp}.sqlite3"),
        format!("alarm-{stamp}.sqlite3.json"),
        format!("alarm-{stamp}.sqlite3.sha256"),
    ];
    names
        .iter()
        .map(|n| {
            let path = dir.join(n);
            std::fs::write(&path, "old").expect("write");
            path
        })
        .collect()
}

/// `backup` on the embedded default: an owner-only copy with its manifest
/// and a `sha256sum -c` file, retention by the stamp in the names (other
/// files untouched); `restore` brings the schema back after a `down`,
/// keeps the replaced file, and refuses a damaged copy.
#[test]
fn backup_retention_and_restore_on_the_embedded_default() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("backup");
    let data = dir.join("data");
    let backups = dir.join("backups");
    std::fs::create_dir_all(&backups).expect("mkdir");
    let old = old_set(&backups, "20250101T000000Z");
    let partial = backups.join("alarm-20250101T000000Z.sqlite3.partial");
    std::fs::write(&partial, "unfinished").expect("write");
    let other = backups.join("notes.txt");
    std::fs::write(&other, "not a backup").expect("write");
    let (code, _, err) = run(bin().arg("up").env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    let (code, text, err) = run(bin()
        .args(["backup", "--keep-days", "30"])
        .env("DATA_DIR", &data)
        .env("BACKUP_DIR", &backups));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("written") && text.contains("1 backup(s) kept"),
        "{text}"
    );
    for gone in old.iter().chain([&partial]) {
        assert!(
            !gone.exists(),
            "{} outlived retention: {text}",
            gone.display()
        );
        assert!(text.contains(&gone.display().to_string()), "{text}");
    }
    assert!(other.exists(), "only the tool's own files are touched");
    let file = std::fs::read_dir(&backups)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite3"))
        .expect("the backup");
    let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "a backup holds every user's data");
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(format!(
            "{}.sha256",
            file.file_name().expect("name").to_string_lossy()
        ))
        .current_dir(&backups)
        .output()
        .expect("sha256sum");
    assert!(check.status.success(), "{check:?}");

    // Roll the schema back, then restore: the backup's schema returns.
    let (code, _, err) = run(bin().args(["down", "2"]).env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    let (code, text, err) = run(bin().arg("restore").arg(&file).env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("every checksum equal") && text.contains("the schema is current"),
        "{text}"
    );
    assert!(text.contains("kept as"), "{text}");
    let (_, text, _) = run(bin().arg("status").env("DATA_DIR", &data));
    assert!(text.contains(", 0 pending"), "{text}");

    // One flipped byte: refused, and the database is as it was.
    let mut bytes = std::fs::read(&file).expect("read");
    let last = bytes.len() - 100;
    bytes[last] ^= 0x55;
    let damaged = dir.join(file.file_name().expect("name"));
    std::fs::write(&damaged, bytes).expect("write");
    std::fs::copy(
        format!("{}.json", file.display()),
        format!("{}.json", damaged.display()),
    )
    .expect("copy");
    let (code, _, err) = run(bin().arg("restore").arg(&damaged).env("DATA_DIR", &data));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("damaged") && err.contains("unchanged"),
        "{err}"
    );
    // Without its manifest a file is refused too.
    std::fs::remove_file(format!("{}.json", damaged.display())).expect("rm");
    let (code, _, err) = run(bin().arg("restore").arg(&damaged).env("DATA_DIR", &data));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("manifest"), "{err}");
    let (code, _, err) = run(bin()
        .args(["backup", "--keep-days", "0"])
        .env("BACKUP_DIR", &backups));
    assert_eq!(code, Some(2), "at least a day: {err}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `backup` and `restore` on PostgreSQL through pg_dump, pg_restore and
/// psql, with the password kept off their command lines; a SQLite backup
/// is refused there.
#[test]
fn backup_and_restore_on_postgresql() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if !runtime.block_on(alarm_sql::testing::postgres_available(
        "alarm-migrate backup",
    )) {
        return;
    }
    let db = runtime.block_on(alarm_sql::testing::PgTestDb::new());
    let dir = temp_dir("pg-backup");
    let (code, text, err) = run(bin()
        .arg("backup")
        .env("DATABASE_URL", &db.url)
        .env("BACKUP_DIR", &dir));
    assert_eq!(code, Some(0), "{err}");
    assert!(text.contains(".pgdump written"), "{text}");
    let file = std::fs::read_dir(&dir)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pgdump"))
        .expect("the dump");
    let (code, _, err) = run(bin().args(["down", "1"]).env("DATABASE_URL", &db.url));
    assert_eq!(code, Some(0), "{err}");
    let (code, text, err) = run(bin().arg("restore").arg(&file).env("DATABASE_URL", &db.url));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        text.contains("every checksum equal") && text.contains("the schema is current"),
        "{text}"
    );
    // Row checksums are compared after the commit: a manifest whose checksum of one table
    // differs (the file and the row counts still match) is reported as a committed restore
    // whose check failed, never as "unchanged".
    let manifest = format!("{}.json", file.display());
    let mut edited: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("read")).expect("json");
    edited["tables"]["seaql_migrations"]["sha256"] = serde_json::json!("0".repeat(64));
    std::fs::write(&manifest, edited.to_string()).expect("write");
    let (code, _, err) = run(bin().arg("restore").arg(&file).env("DATABASE_URL", &db.url));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("restore committed, then its check failed")
            && err.contains("seaql_migrations")
            && !err.contains("unchanged"),
        "{err}"
    );
    // The embedded default's backup does not go into PostgreSQL.
    let data = dir.join("data");
    let sqlite = dir.join("sqlite");
    let (code, _, err) = run(bin().arg("up").env("DATA_DIR", &data));
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = run(bin()
        .arg("backup")
        .env("DATA_DIR", &data)
        .env("BACKUP_DIR", &sqlite));
    assert_eq!(code, Some(0), "{err}");
    let lite = std::fs::read_dir(&sqlite)
        .expect("list")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "sqlite3"))
        .expect("the copy");
    let (code, _, err) = run(bin().arg("restore").arg(&lite).env("DATABASE_URL", &db.url));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot be restored into postgres"), "{err}");
    runtime.block_on(db.drop_db());
    let _ = std::fs::remove_dir_all(dir);
}
