//! The statements PostgreSQL logged for one database, grouped into the transactions each backend ran: what the benches replay through pgbench as their ceilings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// One statement as the server ran it: its text (with `$n` placeholders
/// when it was sent with parameters) and the parameters as SQL literals
/// (`'…'` quoted, or `NULL`).
#[derive(Clone, Debug)]
pub struct Logged {
    pub sql: String,
    pub params: Vec<String>,
}

impl Logged {
    /// The statement with its parameters written in as literals.
    pub fn inlined(&self) -> String {
        let mut sql = self.sql.clone();
        // Highest first, so `$1` does not eat the start of `$10`.
        for (n, value) in self.params.iter().enumerate().rev() {
            sql = sql.replace(&format!("${}", n + 1), value);
        }
        sql
    }
}

/// A transaction one backend committed: its statements between `BEGIN` and
/// `COMMIT`, both excluded.
#[derive(Clone, Debug)]
pub struct Transaction {
    pub backend: u32,
    pub statements: Vec<Logged>,
}

/// Statement logging turned on for one database (for the sessions that
/// connect after [`StatementLog::start`]), and where the server's log
/// stood then.
pub struct StatementLog {
    path: PathBuf,
    start: u64,
    db: String,
}

/// The server log to read: `ALARM_BENCH_PG_LOG`, or the newest file in
/// `/var/log/postgresql` (Debian's clusters log there by default).
fn server_log() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("ALARM_BENCH_PG_LOG") {
        return Some(path.into());
    }
    let mut logs: Vec<_> = std::fs::read_dir("/var/log/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    logs.pop()
}

/// Parses `$1 = 'a', $2 = NULL, …` (values quoted with '' escapes).
fn parse_parameters(detail: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut rest = detail;
    while let Some(eq) = rest.find(" = ") {
        rest = &rest[eq + 3..];
        if let Some(after) = rest.strip_prefix("NULL") {
            values.push("NULL".to_owned());
            rest = after;
        } else if let Some(body) = rest.strip_prefix('\'') {
            let mut value = String::from("'");
            let mut chars = body.char_indices().peekable();
            let mut end = body.len();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                        value.push_str("''");
                        chars.next();
                        continue;
                    }
                    end = i + 1;
                    break;
                }
                value.push(c);
            }
            value.push('\'');
            values.push(value);
            rest = &body[end..];
        } else {
            break;
        }
    }
    values
}

/// What one backend has logged so far.
#[derive(Default)]
struct Backend {
    open: Option<Vec<Logged>>,
    pending: Option<String>,
}

/// Groups the log's lines for `db` into committed transactions, in the
/// order they committed. Rolled-back transactions are left out.
fn transactions(text: &str, db: &str) -> Vec<Transaction> {
    let marker = format!("@{db} ");
    let mut backends: HashMap<u32, Backend> = HashMap::new();
    let mut done = Vec::new();
    for line in text.lines().filter(|l| l.contains(&marker)) {
        // `%m [%p] %q%u@%d `: the backend's pid is the first bracketed number.
        let Some(pid) = line
            .split_once('[')
            .and_then(|(_, r)| r.split_once(']'))
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        let b = backends.entry(pid).or_default();
        if let Some(stmt) = line.split("LOG:  statement: ").nth(1) {
            let word = stmt.trim().trim_end_matches(';').to_ascii_uppercase();
            if word.starts_with("BEGIN") || word.starts_with("START TRANSACTION") {
                b.open = Some(Vec::new());
            } else if word == "COMMIT" || word == "END" {
                if let Some(statements) = b.open.take() {
                    done.push(Transaction {
                        backend: pid,
                        statements,
                    });
                }
            } else if word == "ROLLBACK" {
                b.open = None;
            } else if let Some(open) = b.open.as_mut() {
                open.push(Logged {
                    sql: stmt.to_owned(),
                    params: Vec::new(),
                });
            }
        } else if let Some(exec) = line.split("LOG:  execute ").nth(1) {
            let sql = exec.split_once(": ").map(|(_, sql)| sql.to_owned());
            b.pending = None;
            match (sql, b.open.as_mut()) {
                (Some(sql), Some(open)) if !sql.contains('$') => open.push(Logged {
                    sql,
                    params: Vec::new(),
                }),
                (Some(sql), Some(_)) => b.pending = Some(sql),
                _ => {}
            }
        } else if let Some(detail) = line.split("DETAIL:  parameters: ").nth(1)
            && let (Some(sql), Some(open)) = (b.pending.take(), b.open.as_mut())
        {
            open.push(Logged {
                sql,
                params: parse_parameters(detail),
            });
        }
    }
    done
}

impl StatementLog {
    /// Turns statement logging on for `db` (sessions that connect from now
    /// on log every statement) and notes where the server log stands.
    ///
    /// # Errors
    /// No server log to read.
    pub async fn start(db: &str) -> Result<Self, String> {
        let path = server_log().ok_or("no PostgreSQL server log found (set ALARM_BENCH_PG_LOG)")?;
        let start = std::fs::metadata(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .len();
        super::admin_exec(&format!("ALTER DATABASE {db} SET log_statement = 'all'")).await;
        Ok(Self {
            path,
            start,
            db: db.to_owned(),
        })
    }

    /// Turns statement logging off again and reads the transactions logged
    /// since [`StatementLog::start`]. The server writes its log a little
    /// after the statements ran: reading waits (up to 2 s) until `complete`
    /// accepts what was read.
    ///
    /// # Errors
    /// The log cannot be read, or never satisfied `complete`.
    pub async fn finish(
        self,
        complete: impl Fn(&[Transaction]) -> bool,
    ) -> Result<Vec<Transaction>, String> {
        super::admin_exec(&format!("ALTER DATABASE {} RESET log_statement", self.db)).await;
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let bytes =
                std::fs::read(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
            let from = usize::try_from(self.start).unwrap_or(0).min(bytes.len());
            let found = transactions(&String::from_utf8_lossy(&bytes[from..]), &self.db);
            if complete(&found) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "{} does not hold the expected transactions ({} found)",
                    self.path.display(),
                    found.len()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The transactions per second a finished pgbench run printed.
///
/// # Panics
/// When it printed none (its output is shown).
pub fn pgbench_tps(out: &std::process::Output) -> f64 {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("tps = "))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| {
            panic!(
                "pgbench printed no tps:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_are_told_apart_and_parameters_read() {
        let log = "\
2026-12-05 10:00:00.000 UTC [11] postgres@b LOG:  statement: BEGIN
2026-12-05 10:00:00.000 UTC [12] postgres@b LOG:  statement: BEGIN
2026-12-05 10:00:00.001 UTC [11] postgres@b LOG:  execute sqlx_s_1: DELETE FROM t WHERE a = $1 AND b = $2
2026-12-05 10:00:00.001 UTC [11] postgres@b DETAIL:  parameters: $1 = 'it''s', $2 = NULL
2026-12-05 10:00:00.001 UTC [12] postgres@b LOG:  execute <unnamed>: SELECT 1
2026-12-05 10:00:00.002 UTC [12] postgres@b LOG:  statement: ROLLBACK
2026-12-05 10:00:00.002 UTC [13] postgres@other LOG:  statement: BEGIN
2026-12-05 10:00:00.003 UTC [11] postgres@b LOG:  statement: COMMIT
";
        let found = transactions(log, "b");
        assert_eq!(found.len(), 1, "the rolled-back one is left out");
        assert_eq!(found[0].backend, 11);
        assert_eq!(found[0].statements.len(), 1);
        assert_eq!(found[0].statements[0].params, ["'it''s'", "NULL"]);
        assert_eq!(
            found[0].statements[0].inlined(),
            "DELETE FROM t WHERE a = 'it''s' AND b = NULL"
        );
    }
}
