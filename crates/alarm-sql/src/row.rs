//! Rows to write, each column named next to its value, and the inserts and updates built from them (so no column list is ever matched to a list of values by hand).

use alarm_domain::ports::StoreError;
use sea_orm::Value;

use crate::db::Tx;

/// Stays far below both engines' limits on bound parameters (PostgreSQL
/// 65,535; SQLite 32,766).
const MAX_PARAMS: usize = 8000;

/// One row's columns and values, in the order they were set.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    columns: Vec<&'static str>,
    values: Vec<Value>,
}

impl Row {
    /// An empty row.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Sets `column` to `value`.
    #[must_use]
    pub(crate) fn set(mut self, column: &'static str, value: impl Into<Value>) -> Self {
        self.columns.push(column);
        self.values.push(value.into());
        self
    }

    /// This row followed by `more`'s columns.
    #[must_use]
    pub(crate) fn extend(mut self, more: Row) -> Self {
        self.columns.extend(more.columns);
        self.values.extend(more.values);
        self
    }

    /// `a = ?, b = ?` for an `UPDATE … SET`.
    pub(crate) fn assignments(&self) -> String {
        self.columns
            .iter()
            .map(|c| format!("{c} = ?"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The values, in column order.
    pub(crate) fn into_values(self) -> Vec<Value> {
        self.values
    }
}

/// The column list shared by every row, or why there is none.
fn shape(rows: &[Row]) -> Result<Option<&[&'static str]>, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    if let Some(odd) = rows.iter().find(|r| r.columns != first.columns) {
        return Err(StoreError::Unexpected(
            format!(
                "rows of one write differ in columns: {:?} and {:?}",
                first.columns, odd.columns
            )
            .into(),
        ));
    }
    Ok(Some(&first.columns))
}

impl Tx {
    /// `INSERT INTO table (columns) VALUES (…), (…) suffix`, in chunks;
    /// `suffix` is an `ON CONFLICT` clause or empty. Returns the rows
    /// written.
    pub(crate) async fn insert(
        &self,
        table: &str,
        rows: Vec<Row>,
        suffix: &str,
    ) -> Result<u64, StoreError> {
        let Some(columns) = shape(&rows)? else {
            return Ok(0);
        };
        let width = columns.len();
        let head = format!("INSERT INTO {table} ({})", columns.join(", "));
        let one = format!("({})", vec!["?"; width].join(", "));
        let mut written = 0;
        for chunk in rows.chunks((MAX_PARAMS / width).max(1)) {
            let marks = vec![one.as_str(); chunk.len()].join(", ");
            let values = chunk
                .iter()
                .flat_map(|r| r.values.iter().cloned())
                .collect();
            written += self
                .exec(&format!("{head} VALUES {marks} {suffix}"), values)
                .await?;
        }
        Ok(written)
    }

    /// `UPDATE table SET <set> WHERE <filter>`, the filter's `?` bound to
    /// `filter_values`. Returns the rows changed.
    pub(crate) async fn update(
        &self,
        table: &str,
        set: Row,
        filter: &str,
        filter_values: Vec<Value>,
    ) -> Result<u64, StoreError> {
        let sql = format!("UPDATE {table} SET {} WHERE {filter}", set.assignments());
        let mut values = set.into_values();
        values.extend(filter_values);
        self.exec(&sql, values).await
    }

    /// Updates many rows in one statement per chunk: each row names the
    /// key column `key` first and then the columns to set, and every row
    /// of `table` whose `key` matches takes that row's values
    /// (`WITH v (…) AS (VALUES …) UPDATE table SET c = v.c … FROM v`);
    /// `also` is appended to the assignments (`lease_token = NULL`).
    pub(crate) async fn update_each(
        &self,
        table: &str,
        rows: Vec<Row>,
        also: &str,
    ) -> Result<u64, StoreError> {
        let Some(columns) = shape(&rows)? else {
            return Ok(0);
        };
        let Some((key, set)) = columns.split_first() else {
            return Ok(0);
        };
        let mut assignments: Vec<String> = set.iter().map(|c| format!("{c} = v.{c}")).collect();
        if !also.is_empty() {
            assignments.push(also.to_owned());
        }
        let head = format!("WITH v ({}) AS (VALUES", columns.join(", "));
        let tail = format!(
            ") UPDATE {table} SET {} FROM v WHERE {table}.{key} = v.{key}",
            assignments.join(", ")
        );
        let one = format!("({})", vec!["?"; columns.len()].join(", "));
        let mut written = 0;
        for chunk in rows.chunks((MAX_PARAMS / columns.len()).max(1)) {
            let marks = vec![one.as_str(); chunk.len()].join(", ");
            let values = chunk
                .iter()
                .flat_map(|r| r.values.iter().cloned())
                .collect();
            written += self.exec(&format!("{head} {marks}{tail}"), values).await?;
        }
        Ok(written)
    }
}
