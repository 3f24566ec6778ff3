//! Re-sealing of the stored webhook secrets: plain ones from before sealing and those of an older data key get the current key, online and resumably.

use sea_orm::Value;

use crate::Sql;
use crate::db::{col, corrupt};
use crate::stores::{open_secret, seal_secret};

/// Rows read per step: each step is one read and one short write
/// transaction, so the API and the engine keep running meanwhile.
const BATCH: u64 = 200;

/// What [`Sql::reseal_secrets`] did, in stored values (a registration in
/// a rotation's overlap holds two).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Resealed {
    /// Plain secrets (stored before sealing) now sealed.
    pub sealed: u64,
    /// Secrets of an older key now sealed with the current one.
    pub rekeyed: u64,
    /// Rows already sealed with the current key.
    pub current: u64,
}

impl Sql {
    /// Seals every webhook secret with the sealer's current key: plain
    /// ones stored before sealing existed, and those of a key a rotation
    /// is retiring. Runs in batches of short transactions in id order;
    /// each row is replaced only if it still holds what was read (a
    /// secret rotated meanwhile keeps its new value), so it can run while
    /// the apps serve, be stopped at any point and run again: it resumes
    /// by skipping what is current. `alarm-migrate reseal` runs it, and the
    /// embedded default at start.
    ///
    /// # Errors
    /// No sealer, a store failure, or a secret that does not open (sealed
    /// with a key no longer configured, or altered): the message names
    /// the row's id, never a value.
    pub async fn reseal_secrets(&self) -> Result<Resealed, String> {
        let mut done = Resealed::default();
        // The current secret, then a rotation's previous one.
        for column in ["secret", "previous_secret"] {
            self.reseal_column(column, &mut done).await?;
        }
        Ok(done)
    }

    async fn reseal_column(&self, column: &'static str, done: &mut Resealed) -> Result<(), String> {
        let db = self.handle();
        let sealer = self
            .sealer
            .clone()
            .ok_or("no secret sealer was given to the SQL stores")?;
        let mut after: Option<uuid::Uuid> = None;
        loop {
            let rows = match after {
                Some(id) => {
                    db.query_all(
                        &format!(
                            "SELECT id, {column} AS stored FROM webhooks WHERE {column} IS NOT NULL AND id > ? ORDER BY id LIMIT {BATCH}"
                        ),
                        vec![Value::from(id)],
                    )
                    .await
                }
                None => {
                    db.query_all(
                        &format!(
                            "SELECT id, {column} AS stored FROM webhooks WHERE {column} IS NOT NULL ORDER BY id LIMIT {BATCH}"
                        ),
                        Vec::new(),
                    )
                    .await
                }
            }
            .map_err(|e| format!("cannot read the webhook secrets: {e}"))?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = Some(id_in(last)?);
            let mut changes: Vec<(uuid::Uuid, String, String, bool)> = Vec::new();
            for row in &rows {
                let id = id_in(row)?;
                let stored: String =
                    col(row, "stored").map_err(|e| format!("webhook {id}: {e}"))?;
                if sealer.is_current(&stored) {
                    done.current += 1;
                    continue;
                }
                let plain = !sealer.is_sealed(&stored);
                let secret = open_secret(Some(sealer.as_ref()), stored.clone(), column, id)
                    .map_err(|e| {
                        format!(
                            "webhook {id}: its {column} does not open: {}",
                            alarm_domain::error::chain(&e)
                        )
                    })?;
                let sealed = seal_secret(Some(sealer.as_ref()), &secret, column, id)
                    .map_err(|e| format!("webhook {id}: {e}"))?;
                changes.push((id, stored, sealed, plain));
            }
            if changes.is_empty() {
                continue;
            }
            let replaced = db
                .write(async |tx| {
                    let mut replaced = Vec::with_capacity(changes.len());
                    for (id, stored, sealed, plain) in &changes {
                        let n = tx
                            .exec(
                                &format!(
                                    "UPDATE webhooks SET {column} = ? WHERE id = ? AND {column} = ?"
                                ),
                                vec![
                                    Value::from(sealed.clone()),
                                    Value::from(*id),
                                    Value::from(stored.clone()),
                                ],
                            )
                            .await?;
                        replaced.push((n == 1, *plain));
                    }
                    Ok(replaced)
                })
                .await
                .map_err(|e| format!("cannot re-seal the webhook secrets: {e}"))?;
            for (written, plain) in replaced {
                match (written, plain) {
                    (true, true) => done.sealed += 1,
                    (true, false) => done.rekeyed += 1,
                    // Changed meanwhile (a rotation, a delete): whatever
                    // wrote it sealed it with the current key.
                    (false, _) => done.current += 1,
                }
            }
        }
    }
}

fn id_in(row: &sea_orm::QueryResult) -> Result<uuid::Uuid, String> {
    col::<uuid::Uuid>(row, "id").map_err(|e| corrupt("webhooks.id", e).to_string())
}
