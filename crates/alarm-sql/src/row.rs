//! Rows to write, each column named next to its value, and the inserts and updates built from them (so no column list is ever matched to a list of values by hand).

use alarm_domain::ports::StoreError;
use sea_orm::{DbBackend, QueryResult, Value};

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

    /// Updates many rows: each row names its `keys` key columns first and
    /// then the columns to set, and every row of `table` whose key columns
    /// all match takes that row's values; `also` is appended to the
    /// assignments (`lease_token = NULL`).
    ///
    /// PostgreSQL: the rows travel as one JSON parameter unpacked by
    /// `json_to_recordset` ([`Tx::update_each_returning`]), so the
    /// statement's text is the same whatever the number of rows and is
    /// parsed and planned once per connection. A `VALUES` list has one text
    /// per row count: with batches of 140 to 175 rows nearly every finish
    /// was a new text, each a parse, a plan and an extra round trip to
    /// describe it. SQLite prepares locally, so it keeps the `VALUES` list
    /// (`WITH v (…) AS (VALUES …) UPDATE …`).
    pub(crate) async fn update_each(
        &self,
        table: &str,
        rows: Vec<Row>,
        keys: usize,
        also: &str,
    ) -> Result<u64, StoreError> {
        if self.backend == DbBackend::Postgres {
            let written = self
                .update_each_returning(table, rows, keys, also, "", "1 AS written")
                .await?;
            return Ok(written.len() as u64);
        }
        let Some(EachParts {
            columns,
            matches,
            assignments,
        }) = each_parts(table, &rows, keys, also)?
        else {
            return Ok(0);
        };
        let head = format!("WITH v ({}) AS (VALUES", columns.join(", "));
        let tail = format!(") UPDATE {table} SET {assignments} FROM v WHERE {matches}");
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

    /// [`Tx::update_each`] on PostgreSQL, returning `returning` for each
    /// row written: the written row's columns, the incoming row's (`v.…`)
    /// and those of `join` (`LEFT JOIN webhooks w ON w.id = v.target_id`),
    /// which joins the incoming rows to another table. One statement per
    /// [`JSON_ROWS`] rows, written and answered in one round trip.
    pub(crate) async fn update_each_returning(
        &self,
        table: &str,
        rows: Vec<Row>,
        keys: usize,
        also: &str,
        join: &str,
        returning: &str,
    ) -> Result<Vec<QueryResult>, StoreError> {
        if self.backend != DbBackend::Postgres {
            return Err(StoreError::Unexpected(
                "UPDATE … FROM … RETURNING of joined columns is PostgreSQL's only".into(),
            ));
        }
        let Some(EachParts {
            columns,
            matches,
            assignments,
        }) = each_parts(table, &rows, keys, also)?
        else {
            return Ok(Vec::new());
        };
        let types = columns
            .iter()
            .zip(&rows[0].values)
            .map(|(c, v)| sql_type(c, v))
            .collect::<Result<Vec<_>, _>>()?;
        let record = columns
            .iter()
            .zip(types)
            .map(|(c, t)| format!("{c} {t}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE {table} SET {assignments} \
             FROM json_to_recordset(CAST(? AS json)) AS v ({record}) {join} \
             WHERE {matches} RETURNING {returning}"
        );
        let mut written = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(JSON_ROWS) {
            let json = chunk
                .iter()
                .map(|r| json_object(columns, &r.values))
                .collect::<Result<Vec<_>, _>>()?;
            let text = serde_json::Value::Array(json).to_string();
            written.extend(self.query_all(&sql, vec![Value::from(text)]).await?);
        }
        Ok(written)
    }
}

/// What both forms of [`Tx::update_each`] are built from.
struct EachParts<'r> {
    /// The rows' columns.
    columns: &'r [&'static str],
    /// `table.k = v.k AND …` over the key columns.
    matches: String,
    /// The assignments of the other columns, then `also`.
    assignments: String,
}

/// [`EachParts`] of `rows` whose first `keys` columns are the key; `None`
/// when there is nothing to write.
fn each_parts<'r>(
    table: &str,
    rows: &'r [Row],
    keys: usize,
    also: &str,
) -> Result<Option<EachParts<'r>>, StoreError> {
    let Some(columns) = shape(rows)? else {
        return Ok(None);
    };
    if columns.len() <= keys {
        return Ok(None);
    }
    let (key, set) = columns.split_at(keys);
    let matches = key
        .iter()
        .map(|k| format!("{table}.{k} = v.{k}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut assignments: Vec<String> = set.iter().map(|c| format!("{c} = v.{c}")).collect();
    if !also.is_empty() {
        assignments.push(also.to_owned());
    }
    Ok(Some(EachParts {
        columns,
        matches,
        assignments: assignments.join(", "),
    }))
}

/// Rows per statement of [`Tx::update_each`] on PostgreSQL: a bound on
/// one parameter's size (a sender's batches are a few hundred rows).
const JSON_ROWS: usize = 5000;

/// The PostgreSQL type a value is unpacked as from JSON.
fn sql_type(column: &str, value: &Value) -> Result<&'static str, StoreError> {
    Ok(match value {
        Value::Bool(_) => "boolean",
        Value::SmallInt(_) => "smallint",
        Value::Int(_) => "integer",
        Value::BigInt(_) => "bigint",
        Value::Double(_) => "double precision",
        Value::String(_) => "text",
        Value::Uuid(_) => "uuid",
        _ => return Err(unsupported(column)),
    })
}

/// One row as a JSON object keyed by column name (`NULL` as `null`).
fn json_object(columns: &[&str], values: &[Value]) -> Result<serde_json::Value, StoreError> {
    use serde_json::Value as J;
    let mut object = serde_json::Map::with_capacity(columns.len());
    for (column, value) in columns.iter().zip(values) {
        let json = match value {
            Value::Bool(b) => b.map_or(J::Null, J::Bool),
            Value::SmallInt(n) => n.map_or(J::Null, J::from),
            Value::Int(n) => n.map_or(J::Null, J::from),
            Value::BigInt(n) => n.map_or(J::Null, J::from),
            Value::Double(n) => match n {
                None => J::Null,
                // JSON has no NaN or infinities.
                Some(x) => {
                    J::from(serde_json::Number::from_f64(*x).ok_or_else(|| unsupported(column))?)
                }
            },
            Value::String(s) => s.clone().map_or(J::Null, J::String),
            Value::Uuid(u) => u.map_or(J::Null, |u| J::String(u.to_string())),
            _ => return Err(unsupported(column)),
        };
        object.insert((*column).to_owned(), json);
    }
    Ok(J::Object(object))
}

/// Names the column, never the value (it may be anything a row holds).
fn unsupported(column: &str) -> StoreError {
    StoreError::Unexpected(
        format!("a bulk update cannot carry column {column}'s type of value").into(),
    )
}
