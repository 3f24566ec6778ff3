//! The peer side of `cargo xtask bench peer`: `n` no-op jobs queued in graphile-worker, then one
//! worker started with `concurrency` and timed until the queue is empty; prints one JSON line.
//! Usage: node run.mjs <postgres url> <unbatched|batched> <n> <concurrency>
import { Logger, run, runMigrations } from "graphile-worker";
import pg from "pg";

const [connectionString, mode, nText, concurrencyText] = process.argv.slice(2);
const n = Number(nText);
const concurrency = Number(concurrencyText);
if (!connectionString || !["unbatched", "batched"].includes(mode) || !(n > 0) || !(concurrency > 0)) {
  console.error("usage: node run.mjs <postgres url> <unbatched|batched> <n> <concurrency>");
  process.exit(2);
}

const pool = new pg.Pool({ connectionString, max: 2 });
await runMigrations({ connectionString, logger: new Logger(() => () => {}) });
await pool.query("DELETE FROM graphile_worker._private_jobs");
// Queued before the clock starts, through graphile-worker's own bulk SQL API (`add_jobs`, one
// notification per call; `add_job` per row notifies per row and took minutes for 100k).
for (let from = 1; from <= n; from += 10000) {
  await pool.query(
    "SELECT count(*) FROM graphile_worker.add_jobs(ARRAY(SELECT ROW('noop', json_build_object('i', g), NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec FROM generate_series($1::int, $2::int) g))",
    [from, Math.min(n, from + 9999)],
  );
}
await pool.query("VACUUM (ANALYZE) graphile_worker._private_jobs");
// An idle backend reports its row counts within 10 s: what queueing wrote is not counted below.
await new Promise((resolve) => setTimeout(resolve, 11000));

// Rows inserted, updated and deleted in this database: the same count the alarm side prints.
const written = async () => {
  const { rows } = await pool.query(
    "SELECT (tup_inserted + tup_updated + tup_deleted)::bigint AS w FROM pg_stat_database WHERE datname = current_database()",
  );
  return Number(rows[0].w);
};
const left = async () => Number((await pool.query("SELECT count(*)::int AS c FROM graphile_worker._private_jobs")).rows[0].c);

// Batched: jobs fetched in batches into a local queue, completions written in batches (the
// options graphile-worker's release notes give for high throughput). Unbatched: its defaults.
const worker = mode === "batched"
  ? { localQueue: { size: concurrency * 10 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
  : {};
await pool.query("SELECT pg_stat_clear_snapshot()");
const writtenBefore = await written();
const cpuBefore = process.cpuUsage();
const started = process.hrtime.bigint();
const runner = await run({
  connectionString,
  concurrency,
  maxPoolSize: concurrency + 2,
  noHandleSignals: true,
  pollInterval: 1000,
  taskList: { noop: async () => {} },
  preset: { worker },
  // Its default logger writes a line per job: silent, as the alarm worker runs at `warn`.
  logger: new Logger(() => () => {}),
});
// The queue is polled, not the runner's events: a batched completion is done once written.
while ((await left()) > 0) {
  await new Promise((resolve) => setTimeout(resolve, 20));
}
const secs = Number(process.hrtime.bigint() - started) / 1e9;
await runner.stop();
// pg_stat counters reach the view a moment after the backends report them.
await new Promise((resolve) => setTimeout(resolve, 1000));
await pool.query("SELECT pg_stat_clear_snapshot()");
const rows = (await written()) - writtenBefore;
const cpu = process.cpuUsage(cpuBefore);
console.log(JSON.stringify({
  mode,
  n,
  concurrency,
  secs,
  jobs_per_s: n / secs,
  rows_written: rows,
  rows_per_s: rows / secs,
  node_cpu_pct: (100 * (cpu.user + cpu.system)) / 1e6 / secs,
}));
await pool.end();
