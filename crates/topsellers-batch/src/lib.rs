//! `topsellers batch`: the top sellers of an existing PostgreSQL purchase table, computed incrementally and
//! written to the same results store the Kafka aggregators use, so the same API servers serve them.
//!
//! A run:
//!
//! 1. reads where the last committed run stopped: the *watermark*, the newest purchase time it counted, kept in
//!    the results store as the `next_offset` of partition 0 of the namespace (see below why);
//! 2. asks PostgreSQL for the newest purchase time now (`max(time)`): that is the new watermark;
//! 3. has PostgreSQL group the rows with `old < time <= new` per (item, category, time bucket), so a few
//!    aggregated rows cross the wire instead of every purchase line;
//! 4. feeds the groups, oldest first, to the engine restored from the last checkpoint;
//! 5. saves the engine checkpoint, the new results and the new watermark in one atomic
//!    [`PartitionStore::save_checkpoint`].
//!
//! A run that dies before step 5 leaves the store as it was: the next run starts from the same watermark.
//! A run with no rows past the watermark saves nothing. Two runs at once are fenced by the store's epochs:
//! the later claim wins and the earlier run's save fails with [`StoreError::Fenced`].
//!
//! Why the partition store with one partition: it already commits a checkpoint, an offset and the results
//! together, fences concurrent writers, and exists for SQLite, Cassandra and Redis; the API servers already
//! read it. The watermark is an offset in all but name: the position in the input up to which everything is
//! counted, only measured in milliseconds of event time instead of records.
//!
//! Why each group goes in as two events: the engine counts `quantity × unit_price` per event, and a group's
//! revenue is a sum of lines with different prices. A group of `units` units and `revenue` minor units goes in
//! as one event of `units - 1` units at price 0 and one event of 1 unit at price `revenue`: the same units and
//! revenue in the same bucket, exactly. Each group is timed at its newest row, so event time moves exactly as
//! it would have with the rows one by one and no group is ever late.
//!
//! What a batch cannot see: a row committed after a run with a purchase time at or before that run's
//! watermark (a transaction that was open during the run). Time the rows by when they are written, or run the
//! batch on a query that leaves out the last minutes (`WHERE time < now() - interval '5 minutes'`).

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use topsellers_engine::{Engine, EngineConfig};
use topsellers_model::{CategoryPath, PurchaseEvent, TimestampMs};
use topsellers_store::{
    PartitionCheckpoint, PartitionResults, PartitionStore, StoreBinding, StoreError,
};

/// The one partition of a batch namespace.
pub const BATCH_PARTITION: u32 = 0;

/// The `[batch]` section: where the purchases are and which columns mean what.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    /// `postgres://user:password@host:port/database` (or the `host=... user=...` form).
    pub url: String,
    /// The purchase table (`purchases` or `schema.purchases`); give this or `query`.
    pub table: Option<String>,
    /// A `SELECT` whose rows are the purchases (to filter, join or normalise); give this or `table`.
    pub query: Option<String>,
    /// Which column holds each field.
    pub columns: ColumnMap,
    pub connect_timeout_ms: u64,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            url: String::new(),
            table: None,
            query: None,
            columns: ColumnMap::default(),
            connect_timeout_ms: 5_000,
        }
    }
}

/// Column names of the purchase table or query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ColumnMap {
    /// Text.
    pub item_id: String,
    /// Text, optional: the item's display name.
    pub item_name: Option<String>,
    /// Text: a category path like `electronics/phones`.
    pub category: String,
    /// Integer; negative for refunds.
    pub quantity: String,
    /// Price of one unit in major units (`numeric`, a float or an integer), scaled by `limits.price_decimals`.
    pub unit_price: String,
    /// `timestamptz`, `timestamp` (read as UTC) or `bigint` milliseconds since the Unix epoch.
    pub time: String,
}

impl Default for ColumnMap {
    fn default() -> Self {
        ColumnMap {
            item_id: "item_id".into(),
            item_name: None,
            category: "category".into(),
            quantity: "quantity".into(),
            unit_price: "unit_price".into(),
            time: "time".into(),
        }
    }
}

impl BatchSettings {
    /// Every problem at once, each naming its key (without the `batch.` prefix) and the fix.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.url.trim().is_empty() {
            problems.push(
                "url is empty; give the purchase database, e.g. url = \"postgres://user:password@127.0.0.1:5432/shop\""
                    .to_string(),
            );
        } else if let Err(e) = self.url.parse::<postgres::Config>() {
            problems.push(format!(
                "url {:?} is not a PostgreSQL URL ({e}); write postgres://user:password@host:port/database",
                self.masked_url()
            ));
        }
        match (&self.table, &self.query) {
            (None, None) => problems.push(
                "neither table nor query is set; name the purchase table (table = \"purchases\") or give a SELECT (query = \"SELECT ...\")"
                    .to_string(),
            ),
            (Some(_), Some(_)) => problems.push(
                "both table and query are set; keep one of them".to_string(),
            ),
            (Some(t), None) if t.trim().is_empty() => {
                problems.push("table is empty; name the purchase table".to_string())
            }
            (None, Some(q)) if q.trim().is_empty() => {
                problems.push("query is empty; give a SELECT whose rows are the purchases".to_string())
            }
            _ => {}
        }
        let c = &self.columns;
        let named = [
            ("item_id", Some(&c.item_id)),
            ("item_name", c.item_name.as_ref()),
            ("category", Some(&c.category)),
            ("quantity", Some(&c.quantity)),
            ("unit_price", Some(&c.unit_price)),
            ("time", Some(&c.time)),
        ];
        for (key, column) in named {
            if column.is_some_and(|c| c.trim().is_empty()) {
                problems.push(format!(
                    "columns.{key} is empty; name the column that holds it"
                ));
            }
        }
        if self.connect_timeout_ms == 0 {
            problems.push("connect_timeout_ms is 0; use a positive number of milliseconds".into());
        }
        problems
    }

    /// The URL with its password replaced by `***`, for logs, errors and `check-config`.
    pub fn masked_url(&self) -> String {
        mask_url(&self.url)
    }

    /// These settings with the password masked.
    pub fn masked(&self) -> BatchSettings {
        BatchSettings {
            url: self.masked_url(),
            ..self.clone()
        }
    }

    /// What is read, for messages: the table name or "the batch.query".
    pub fn source_name(&self) -> String {
        match &self.table {
            Some(t) => format!("table {t}"),
            None => "the rows of batch.query".to_string(),
        }
    }
}

/// `url` with any password replaced by `***`: in `scheme://user:password@host` and in `password=...`.
pub fn mask_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let masked_tail = mask_password_params(tail);
        return match authority.rsplit_once('@') {
            Some((user_info, host)) => match user_info.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{masked_tail}"),
                None => format!("{scheme}://{user_info}@{host}{masked_tail}"),
            },
            None => format!("{scheme}://{authority}{masked_tail}"),
        };
    }
    mask_password_params(url)
}

fn mask_password_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        let (before, after) = rest.split_at(at + "password=".len());
        out.push_str(before);
        out.push_str("***");
        let end = after.find([' ', '&']).unwrap_or(after.len());
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// What a run needs besides the `[batch]` section.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    pub engine: EngineConfig,
    /// ISO 4217 code of every price (`limits.currency`).
    pub currency: String,
    /// Digits of the minor unit (`limits.price_decimals`).
    pub price_decimals: u32,
    /// Wall clock, for the snapshot's `computed_at_ms`.
    pub now_ms: TimestampMs,
}

/// Where a run is, for a progress bar: called after each group.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Purchase time range of this run: `(from_ms, to_ms]`; `from_ms` is `None` on the first run.
    pub from_ms: Option<TimestampMs>,
    pub to_ms: TimestampMs,
    /// The newest purchase time fed so far.
    pub at_ms: TimestampMs,
    pub groups: u64,
    pub rows: u64,
}

/// What a run did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchSummary {
    /// The watermark before the run (`None`: first run).
    pub from_ms: Option<TimestampMs>,
    /// The committed watermark after the run (unchanged when nothing was new).
    pub to_ms: Option<TimestampMs>,
    /// Purchase rows counted by this run.
    pub rows: u64,
    /// Aggregated rows PostgreSQL returned.
    pub groups: u64,
    /// Rows past the watermark left out because a mapped column was NULL.
    pub rows_with_nulls: u64,
    /// Groups left out because the item id or category was not valid (each names the reason once).
    pub groups_rejected: u64,
    pub first_rejection: Option<String>,
    /// Results version written, `None` when nothing was new.
    pub version: Option<u64>,
    /// Rows counted by every run so far.
    pub events_counted_total: u64,
}

/// Why a run failed. Every failed run changed nothing in the results store.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(
        "cannot reach PostgreSQL at {url}: {detail}; is the server running and batch.url right?"
    )]
    Unreachable { url: String, detail: String },
    #[error("{source_name} does not exist in PostgreSQL at {url} ({detail}); fix batch.table or batch.query")]
    MissingTable {
        source_name: String,
        url: String,
        detail: String,
    },
    #[error("{source_name} has no column named in batch.columns ({detail}); fix batch.columns to the real column names")]
    MissingColumn { source_name: String, detail: String },
    #[error(
        "column {column:?} (batch.columns.{key}) of {source_name} is of type {found}; {expected}"
    )]
    WrongType {
        key: &'static str,
        column: String,
        source_name: String,
        found: String,
        expected: &'static str,
    },
    #[error("PostgreSQL query on {source_name} failed: {detail}")]
    Query { source_name: String, detail: String },
    #[error("results store {store}: {source}")]
    Store {
        store: String,
        #[source]
        source: StoreError,
    },
    #[error("another batch run committed to {store} while this one started; this run saved nothing, run it again")]
    Raced { store: String },
    #[error("the stored engine checkpoint cannot be restored: {0}")]
    Engine(String),
}

impl BatchError {
    fn from_pg(settings: &BatchSettings, e: postgres::Error) -> BatchError {
        let source_name = settings.source_name();
        let detail = match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => e.to_string(),
        };
        match e.code() {
            Some(c) if *c == SqlState::UNDEFINED_TABLE => BatchError::MissingTable {
                source_name,
                url: settings.masked_url(),
                detail,
            },
            Some(c) if *c == SqlState::UNDEFINED_COLUMN => BatchError::MissingColumn {
                source_name,
                detail,
            },
            Some(_) => BatchError::Query {
                source_name,
                detail,
            },
            None if e.is_closed() || e.as_db_error().is_none() => BatchError::Unreachable {
                url: settings.masked_url(),
                detail,
            },
            None => BatchError::Query {
                source_name,
                detail,
            },
        }
    }
}

/// The meaning of a batch namespace's stored state: checked by [`PartitionStore::bind`] on every run.
pub fn store_binding(options: &BatchOptions) -> StoreBinding {
    #[derive(Serialize)]
    struct Meaning<'a> {
        source: &'static str,
        engine: &'a EngineConfig,
        currency: &'a str,
        price_decimals: u32,
    }
    StoreBinding {
        partitions: 1,
        settings: serde_json::to_string(&Meaning {
            source: "batch",
            engine: &options.engine,
            currency: &options.currency,
            price_decimals: options.price_decimals,
        })
        .unwrap_or_default(),
    }
}

/// Connects to the purchase database.
pub fn connect(settings: &BatchSettings) -> Result<Client, BatchError> {
    let mut config: postgres::Config =
        settings
            .url
            .parse()
            .map_err(|e: postgres::Error| BatchError::Unreachable {
                url: settings.masked_url(),
                detail: format!("batch.url does not parse: {e}"),
            })?;
    config.connect_timeout(Duration::from_millis(settings.connect_timeout_ms));
    config.application_name("topsellers batch");
    config.connect(NoTls).map_err(|e| BatchError::Unreachable {
        url: settings.masked_url(),
        detail: e.to_string(),
    })
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The purchase rows as a `FROM` item.
fn source_sql(settings: &BatchSettings) -> String {
    match (&settings.table, &settings.query) {
        (Some(table), _) => table
            .split('.')
            .map(|part| quote_ident(part.trim()))
            .collect::<Vec<_>>()
            .join("."),
        (None, Some(query)) => format!("({}) AS batch_source", query.trim().trim_end_matches(';')),
        (None, None) => "batch_source_missing".to_string(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimeKind {
    Timestamptz,
    Timestamp,
    EpochMs,
}

/// The mapped columns, checked against their types, as one sub-select with uniform types:
/// `item text, category text, name text, qty int8, price_minor int8, t_ms int8`.
fn typed_rows_sql(
    client: &mut Client,
    settings: &BatchSettings,
    price_decimals: u32,
) -> Result<String, BatchError> {
    let c = &settings.columns;
    let source = source_sql(settings);
    let name_col = c.item_name.as_deref();
    let mut probe = format!(
        "SELECT {}, {}, {}, {}, {}",
        quote_ident(&c.item_id),
        quote_ident(&c.category),
        quote_ident(&c.quantity),
        quote_ident(&c.unit_price),
        quote_ident(&c.time)
    );
    if let Some(n) = name_col {
        probe.push_str(&format!(", {}", quote_ident(n)));
    }
    probe.push_str(&format!(" FROM {source} LIMIT 0"));
    let stmt = client
        .prepare(&probe)
        .map_err(|e| BatchError::from_pg(settings, e))?;
    let types: Vec<Type> = stmt.columns().iter().map(|c| c.type_().clone()).collect();
    let wrong = |key: &'static str, column: &str, found: &Type, expected: &'static str| {
        BatchError::WrongType {
            key,
            column: column.to_string(),
            source_name: settings.source_name(),
            found: found.name().to_string(),
            expected,
        }
    };
    let texts = [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME];
    let integers = [Type::INT2, Type::INT4, Type::INT8];
    let text_expected = "expected text (text, varchar or char); cast it in batch.query, e.g. SELECT col::text AS col";
    if !texts.contains(&types[0]) {
        return Err(wrong("item_id", &c.item_id, &types[0], text_expected));
    }
    if !texts.contains(&types[1]) {
        return Err(wrong("category", &c.category, &types[1], text_expected));
    }
    if !integers.contains(&types[2]) {
        return Err(wrong(
            "quantity",
            &c.quantity,
            &types[2],
            "expected an integer (smallint, integer or bigint)",
        ));
    }
    let price_ok = integers.contains(&types[3])
        || [Type::NUMERIC, Type::FLOAT4, Type::FLOAT8].contains(&types[3]);
    if !price_ok {
        return Err(wrong(
            "unit_price",
            &c.unit_price,
            &types[3],
            "expected a number of major units (numeric, real, double precision or an integer)",
        ));
    }
    let time_kind =
        match &types[4] {
            t if *t == Type::TIMESTAMPTZ => TimeKind::Timestamptz,
            t if *t == Type::TIMESTAMP => TimeKind::Timestamp,
            t if *t == Type::INT8 => TimeKind::EpochMs,
            t => return Err(wrong(
                "time",
                &c.time,
                t,
                "expected timestamptz, timestamp (read as UTC) or bigint milliseconds since 1970",
            )),
        };
    if let (Some(n), Some(t)) = (name_col, types.get(5)) {
        if !texts.contains(t) {
            return Err(wrong("item_name", n, t, text_expected));
        }
    }
    let time = quote_ident(&c.time);
    let t_ms = match time_kind {
        // extract(epoch ...) of a timestamp without time zone is its value read as UTC.
        TimeKind::Timestamptz | TimeKind::Timestamp => {
            format!("floor(extract(epoch FROM {time}) * 1000)::int8")
        }
        TimeKind::EpochMs => time,
    };
    let scale = 10u64.pow(price_decimals);
    let price = quote_ident(&c.unit_price);
    let price_minor = if integers.contains(&types[3]) {
        format!("({price}::int8 * {scale})")
    } else {
        format!("round({price}::numeric * {scale})::int8")
    };
    let name = name_col.map_or("NULL::text".to_string(), |n| {
        format!("{}::text", quote_ident(n))
    });
    Ok(format!(
        "SELECT {}::text AS item, {}::text AS category, {name} AS name, {}::int8 AS qty, {price_minor} AS price_minor, \
         {t_ms} AS t_ms FROM {source}",
        quote_ident(&c.item_id),
        quote_ident(&c.category),
        quote_ident(&c.quantity),
    ))
}

/// Runs one incremental batch: see the [crate documentation](crate).
pub fn run(
    settings: &BatchSettings,
    options: &BatchOptions,
    store: &dyn PartitionStore,
    mut progress: impl FnMut(&Progress),
) -> Result<BatchSummary, BatchError> {
    let store_err = |source: StoreError| BatchError::Store {
        store: store.describe(),
        source,
    };
    store.bind(&store_binding(options)).map_err(store_err)?;
    let stored = store.load_results(BATCH_PARTITION).map_err(store_err)?;
    let from_ms = stored.as_ref().map(|r| r.next_offset);
    let previous_total = stored.as_ref().map_or(0, |r| r.snapshot.events_counted);

    let mut client = connect(settings)?;
    let rows_sql = typed_rows_sql(&mut client, settings, options.price_decimals)?;
    let pg = |e| BatchError::from_pg(settings, e);
    let after = from_ms.unwrap_or(i64::MIN);
    let bounds = client
        .query_one(
            &format!(
                "SELECT max(t_ms), count(*) FILTER (WHERE item IS NULL OR category IS NULL OR qty IS NULL \
                 OR price_minor IS NULL) FROM ({rows_sql}) AS r WHERE t_ms > $1"
            ),
            &[&after],
        )
        .map_err(pg)?;
    let newest: Option<i64> = bounds.get(0);
    let rows_with_nulls = bounds.get::<_, i64>(1) as u64;
    let mut summary = BatchSummary {
        from_ms,
        to_ms: from_ms,
        rows: 0,
        groups: 0,
        rows_with_nulls,
        groups_rejected: 0,
        first_rejection: None,
        version: None,
        events_counted_total: previous_total,
    };
    let Some(to_ms) = newest else {
        return Ok(summary);
    };

    let claim = store.claim(BATCH_PARTITION).map_err(store_err)?;
    if claim.results.map(|m| m.next_offset) != from_ms {
        // Another run committed between our read and our claim: its results stand; run again to go on.
        return Err(BatchError::Raced {
            store: store.describe(),
        });
    }
    let mut engine = match &claim.checkpoint {
        Some(cp) => Engine::restore(options.engine.clone(), &cp.state)
            .map_err(|e| BatchError::Engine(e.to_string()))?,
        None => {
            Engine::new(options.engine.clone()).map_err(|e| BatchError::Engine(e.to_string()))?
        }
    };

    let bucket_ms = (options.engine.bucket_secs * 1000) as i64;
    let groups_sql = format!(
        "SELECT item, category, max(t_ms) AS at_ms, sum(qty)::int8 AS units, sum(qty * price_minor)::int8 AS revenue, \
         count(*)::int8 AS lines, (array_agg(name ORDER BY t_ms DESC, name DESC) FILTER (WHERE name <> ''))[1] AS name \
         FROM ({rows_sql}) AS r \
         WHERE t_ms > $1 AND t_ms <= $2 AND item IS NOT NULL AND category IS NOT NULL AND qty IS NOT NULL \
           AND price_minor IS NOT NULL \
         GROUP BY item, category, t_ms - ((t_ms % {bucket_ms}) + {bucket_ms}) % {bucket_ms} \
         ORDER BY at_ms, item, category"
    );
    let params: [&(dyn ToSql + Sync); 2] = [&after, &to_ms];
    let mut rows = client
        .query_raw(groups_sql.as_str(), params.iter().copied())
        .map_err(pg)?;
    let mut tick = Progress {
        from_ms,
        to_ms,
        at_ms: from_ms.unwrap_or(to_ms),
        groups: 0,
        rows: 0,
    };
    while let Some(row) = rows.next().map_err(pg)? {
        let item: String = row.get(0);
        let category: String = row.get(1);
        let at_ms: i64 = row.get(2);
        let units: i64 = row.get(3);
        let revenue: i64 = row.get(4);
        let lines: i64 = row.get(5);
        let name: Option<String> = row.get(6);
        tick.groups += 1;
        tick.at_ms = at_ms;
        match group_events(
            &item,
            &category,
            name,
            at_ms,
            units,
            revenue,
            &options.currency,
        ) {
            Ok(events) => {
                for ev in &events {
                    engine.admit(ev);
                }
                tick.rows += lines as u64;
            }
            Err(reason) => {
                summary.groups_rejected += 1;
                summary.first_rejection.get_or_insert(reason);
            }
        }
        progress(&tick);
    }
    drop(rows);

    let version = claim.results.map_or(1, |m| m.version + 1);
    let mut snapshot = engine.snapshot(version, options.now_ms, &options.currency);
    snapshot.events_counted = previous_total + tick.rows;
    let checkpoint = PartitionCheckpoint {
        next_offset: to_ms,
        state: engine.checkpoint(),
    };
    let results = PartitionResults {
        next_offset: to_ms,
        snapshot,
    };
    store
        .save_checkpoint(BATCH_PARTITION, claim.epoch, &checkpoint, &results)
        .map_err(store_err)?;
    summary.to_ms = Some(to_ms);
    summary.rows = tick.rows;
    summary.groups = tick.groups;
    summary.version = Some(version);
    summary.events_counted_total = previous_total + tick.rows;
    Ok(summary)
}

/// The two engine events that carry one group's units and revenue exactly (see the crate documentation).
fn group_events(
    item: &str,
    category: &str,
    name: Option<String>,
    at_ms: i64,
    units: i64,
    revenue: i64,
    currency: &str,
) -> Result<[PurchaseEvent; 2], String> {
    let item = item.trim();
    if item.is_empty() {
        return Err("an empty item id".to_string());
    }
    if item.len() > topsellers_model::MAX_ITEM_ID_LEN {
        return Err(format!(
            "an item id of {} bytes (at most {} are allowed)",
            item.len(),
            topsellers_model::MAX_ITEM_ID_LEN
        ));
    }
    let category = CategoryPath::parse(category).map_err(|e| e.to_string())?;
    let name = name.filter(|n| !n.trim().is_empty()).map(|n| {
        let mut n = n.trim().to_string();
        if n.len() > topsellers_model::MAX_ITEM_NAME_LEN {
            let mut cut = topsellers_model::MAX_ITEM_NAME_LEN;
            while !n.is_char_boundary(cut) {
                cut -= 1;
            }
            n.truncate(cut);
        }
        n
    });
    let event = |quantity: i64, unit_price_minor: i64| PurchaseEvent {
        event_id: None,
        event_time_ms: at_ms,
        original_time_ms: None,
        item_id: item.to_string(),
        item_name: name.clone(),
        category: category.clone(),
        quantity,
        unit_price_minor,
        currency: currency.to_string(),
        country: None,
    };
    Ok([event(units - 1, 0), event(1, revenue)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            mask_url("postgres://shop:s3cret@db:5432/shop?sslmode=disable"),
            "postgres://shop:***@db:5432/shop?sslmode=disable"
        );
        assert_eq!(mask_url("postgres://db/shop"), "postgres://db/shop");
        assert_eq!(
            mask_url("host=db user=shop password=s3cret dbname=shop"),
            "host=db user=shop password=*** dbname=shop"
        );
        assert_eq!(
            mask_url("postgres://db/shop?password=s3cret&x=1"),
            "postgres://db/shop?password=***&x=1"
        );
    }

    #[test]
    fn a_group_becomes_two_events_with_its_exact_units_and_revenue() {
        for (units, revenue) in [(1, 250), (7, 1_001), (0, 0), (-3, -750), (5, -10)] {
            let events = group_events("a", "x/y", None, 60_000, units, revenue, "GBP").unwrap();
            let u: i64 = events.iter().map(|e| e.quantity).sum();
            let r: i64 = events.iter().map(|e| e.revenue_minor()).sum();
            assert_eq!((u, r), (units, revenue));
        }
    }

    #[test]
    fn settings_problems_are_all_reported() {
        let s = BatchSettings {
            table: Some("t".into()),
            query: Some("SELECT 1".into()),
            connect_timeout_ms: 0,
            ..BatchSettings::default()
        };
        let problems = s.validate();
        assert_eq!(problems.len(), 3, "{problems:?}");
    }
}
