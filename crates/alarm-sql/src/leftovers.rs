//! After an erasure: which columns of which tables still hold a value that named the erased account, found from the schema's own catalogue so that a table added later is searched too.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Value};

use crate::db::stmt;
use crate::{DbKind, Sql};

/// How a column is searched: by identity for ids, by substring for text.
enum Probe {
    Id,
    Text,
}

impl Sql {
    /// Every `table.column` holding one of `ids` (in an id column: `uuid`
    /// on PostgreSQL, `BLOB` on SQLite) or a text containing one of
    /// `texts` (case-insensitively), across every table of the schema,
    /// listed from the database's catalogue rather than from a list kept
    /// here. Operators can run it after an erasure; the tests run it to
    /// prove that erasure forgets nothing, including tables added later.
    ///
    /// # Errors
    /// A catalogue or table read failed.
    pub async fn columns_naming(
        &self,
        ids: &[uuid::Uuid],
        texts: &[&str],
    ) -> Result<Vec<String>, String> {
        let backend = self.backend();
        let mut found = Vec::new();
        for name in self.tables().await? {
            // Catalogue names, quoted as identifiers (a `"` doubled).
            let table = name.replace('"', "\"\"");
            for (name, probe) in self.columns(&name).await? {
                let column = name.replace('"', "\"\"");
                let (sql, values): (String, Vec<Value>) = match probe {
                    Probe::Id if !ids.is_empty() => (
                        format!(
                            "SELECT count(*) AS n FROM \"{table}\" WHERE \"{column}\" IN ({})",
                            vec!["?"; ids.len()].join(", ")
                        ),
                        ids.iter().map(|id| Value::from(*id)).collect(),
                    ),
                    Probe::Text if !texts.is_empty() => (
                        format!(
                            "SELECT count(*) AS n FROM \"{table}\" WHERE {}",
                            vec![format!("lower(\"{column}\") LIKE ?"); texts.len()].join(" OR ")
                        ),
                        texts
                            .iter()
                            .map(|t| Value::from(format!("%{}%", t.to_lowercase())))
                            .collect(),
                    ),
                    _ => continue,
                };
                let row = self
                    .db
                    .query_one_raw(stmt(backend, &sql, values).map_err(|e| e.to_string())?)
                    .await
                    .map_err(|e| format!("cannot search {table}.{column}: {e}"))?;
                if row.map(|r| count(&r)).transpose()?.unwrap_or(0) > 0 {
                    found.push(format!("{table}.{column}"));
                }
            }
        }
        Ok(found)
    }

    fn backend(&self) -> DbBackend {
        match self.kind {
            DbKind::Postgres => DbBackend::Postgres,
            DbKind::Sqlite => DbBackend::Sqlite,
        }
    }

    /// The schema's tables, from the catalogue.
    async fn tables(&self) -> Result<Vec<String>, String> {
        let sql = match self.kind {
            DbKind::Postgres => {
                "SELECT table_name AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
                 ORDER BY table_name"
            }
            DbKind::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
        };
        self.db
            .query_all_raw(stmt(self.backend(), sql, Vec::new()).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| format!("cannot read the catalogue: {e}"))?
            .iter()
            .map(|row| row.try_get::<String>("", "name").map_err(|e| e.to_string()))
            .collect()
    }

    /// A table's id and text columns.
    async fn columns(&self, table: &str) -> Result<Vec<(String, Probe)>, String> {
        let (sql, values) = match self.kind {
            DbKind::Postgres => (
                "SELECT column_name AS name, data_type AS kind FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = ?",
                vec![Value::from(table)],
            ),
            DbKind::Sqlite => (
                "SELECT name, type AS kind FROM pragma_table_info(?)",
                vec![Value::from(table)],
            ),
        };
        let rows = self
            .db
            .query_all_raw(stmt(self.backend(), sql, values).map_err(|e| e.to_string())?)
            .await
            .map_err(|e| format!("cannot list the columns of {table}: {e}"))?;
        let mut out = Vec::new();
        for row in rows {
            let name: String = row.try_get("", "name").map_err(|e| e.to_string())?;
            let kind: String = row.try_get("", "kind").map_err(|e| e.to_string())?;
            let probe = match kind.to_ascii_lowercase().as_str() {
                "uuid" | "blob" => Probe::Id,
                "text" | "character varying" => Probe::Text,
                _ => continue,
            };
            out.push((name, probe));
        }
        Ok(out)
    }
}

fn count(row: &QueryResult) -> Result<i64, String> {
    row.try_get("", "n").map_err(|e| e.to_string())
}
