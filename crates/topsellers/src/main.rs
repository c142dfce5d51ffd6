//! `topsellers`: one binary with a subcommand per role. See `topsellers --help`.

/// `println!` that does not panic when stdout is closed early (`topsellers replay ... | head`): output is a report,
/// and a reader that stopped reading is not an error of ours.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod agent;
mod aggregate;
mod api;
mod archive;
mod batch;
mod cluster;
mod config;
mod demo;
mod http_sink;
mod ledger;
mod live_archive;
mod node;
mod publish;
mod replay;
mod runner;
mod serve;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use config::Config;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  topsellers demo                                   # generated traffic, page on http://127.0.0.1:8080/
  topsellers replay --config examples/online-retail.toml ../shared/data/online-retail/by-day/
  topsellers serve --config examples/online-retail.toml
  curl 'http://127.0.0.1:8080/v1/top?category=france&window=all&n=10'
  topsellers generate --events 1000000 --out events.csv
  topsellers check-config --config topsellers.toml

Cluster shape (Kafka + a shared results store + stateless API servers):
  topsellers replay --to kafka --config cluster.toml purchases.csv
  topsellers aggregate --config cluster.toml       # run one or more; they share the partitions
  topsellers api --config cluster.toml --listen 127.0.0.1:8081";

/// Exact, fast top-N best sellers per category, over sliding windows of event time.
#[derive(Parser, Debug)]
#[command(name = "topsellers", version, after_help = EXAMPLES)]
struct Cli {
    /// TOML config file (every key has a default; `TOPSELLERS_<SECTION>__<KEY>` variables override it).
    #[arg(long, short, global = true, env = "TOPSELLERS_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides `data_dir` of the config).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Log filter, e.g. `info`, `debug`, `topsellers=debug` (also RUST_LOG).
    /// The Cassandra driver's own logs are off by default (`scylla=off`): topsellers reports what failed
    /// and the fix itself; `--log info,scylla=info` brings them back.
    #[arg(long, global = true, default_value = "info,scylla=off")]
    log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ReplayTarget {
    Embedded,
    Kafka,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ArchiveSource {
    Kafka,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the embedded pipeline on generated traffic and serve the page and API.
    #[command(
        after_help = "Examples:\n  topsellers demo\n  topsellers demo --listen 127.0.0.1:9000 --data-dir /tmp/demo --backfill-minutes 120\n  topsellers demo --duration-secs 30   # stops by itself"
    )]
    Demo {
        /// Address to serve on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Minutes of history generated at start into an empty data directory.
        #[arg(long, default_value_t = 30)]
        backfill_minutes: u64,
        /// Stop after this many seconds.
        #[arg(long)]
        duration_secs: Option<u64>,
    },
    /// Serve a data directory: API, page, and POST /v1/purchases when server.auth_token is set.
    #[command(
        after_help = "Examples:\n  topsellers serve --config examples/online-retail.toml\n  TOPSELLERS_SERVER__AUTH_TOKEN=$(openssl rand -hex 24) topsellers serve --listen 0.0.0.0:8080\n  curl -H \"Authorization: Bearer $TOPSELLERS_SERVER__AUTH_TOKEN\" --data-binary @purchases.ndjson http://127.0.0.1:8080/v1/purchases"
    )]
    Serve {
        /// Address to serve on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Read purchase files (CSV or JSON lines, per the config's [input] mapping) into the data directory.
    #[command(
        after_help = "Examples:\n  topsellers replay --config examples/online-retail.toml ../shared/data/online-retail/by-day/\n  topsellers replay --config my.toml --data-dir /tmp/d jan.csv feb.csv"
    )]
    Replay {
        /// Files (read in the order given: put older files first, or their events may arrive late), or directories
        /// whose purchase files are read in name order.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
        /// Where the purchases go: `embedded` (the data directory) or `kafka` (the [kafka] topic, for the
        /// aggregators).
        #[arg(long, value_enum, default_value_t = ReplayTarget::Embedded)]
        to: ReplayTarget,
    },
    /// Aggregate the [kafka] topic as a member of the aggregators' consumer group; results go to the
    /// [cluster] results store. Run as many as you like: they share the partitions.
    #[command(
        after_help = "Examples:\n  topsellers aggregate --config cluster.toml\n  TOPSELLERS_KAFKA__BOOTSTRAP_SERVERS=10.0.0.5:9092 topsellers aggregate"
    )]
    Aggregate,
    /// Serve the API and page from the [cluster] results store (stateless: run as many as you like).
    #[command(
        after_help = "Examples:\n  topsellers api --config cluster.toml --listen 127.0.0.1:8081"
    )]
    Api {
        /// Address to serve on (overrides server.listen).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Count the purchases of the [batch] PostgreSQL table added since the last run into the [cluster] results
    /// store (incremental; safe to kill and to repeat; run it hourly from cron or a systemd timer).
    #[command(
        after_help = "Examples:\n  topsellers batch --config shop.toml\n  TOPSELLERS_BATCH__URL=postgres://shop:secret@db/shop topsellers batch --config shop.toml"
    )]
    Batch {
        /// No progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Tail purchase logs ([[agent.files]]), keep only the event fields (personal data scrubbed) and deliver them
    /// to an embedded node or to Kafka ([agent.downstream]) without losing any, across restarts and rotations.
    #[command(
        after_help = "Examples:\n  topsellers agent --config examples/agent.toml\n  TOPSELLERS_KAFKA__BOOTSTRAP_SERVERS=10.0.0.5:9092 topsellers agent --config agent-kafka.toml"
    )]
    Agent,
    /// Write purchase files (parsed and scrubbed as by `replay`) to the [archive] as Parquet, partitioned
    /// dt=/hour=; files already archived are skipped, so running it again over a folder adds only new files.
    /// With --from kafka, archive the [kafka] topic instead, as a consumer group of its own, until stopped.
    #[command(
        after_help = "Examples:\n  topsellers archive --config examples/online-retail.toml ../shared/data/online-retail/by-day/\n  topsellers archive --from kafka --config cluster.toml   # runs until Ctrl-C / SIGTERM"
    )]
    Archive {
        /// Files, or directories whose purchase files are read in name order.
        #[arg(required_unless_present = "from", conflicts_with = "from")]
        inputs: Vec<PathBuf>,
        /// Archive the purchases topic of [kafka] instead of files.
        #[arg(long, value_enum)]
        from: Option<ArchiveSource>,
    },
    /// Write generated purchases to a file (JSON lines for .jsonl/.ndjson, else CSV), e.g. for benchmarks.
    #[command(
        after_help = "Examples:\n  topsellers generate --events 1000000 --out /tmp/events.csv\n  topsellers generate --events 5000 --out /tmp/events.jsonl --start 2026-11-01T00:00:00Z"
    )]
    Generate {
        /// How many purchases to write.
        #[arg(long)]
        events: u64,
        /// Output file: `.jsonl`/`.ndjson` for JSON lines (the POST /v1/purchases shape), anything else for CSV.
        /// Either reads back with `topsellers replay` and no [input] section.
        #[arg(long)]
        out: PathBuf,
        /// Time of the first event (RFC 3339); default: so that the last event is now (at the configured
        /// [demo] rate_per_sec), which makes the generated purchases visible in every window.
        #[arg(long)]
        start: Option<String>,
    },
    /// Print the results last checkpointed in a data directory as JSON (works beside a running node).
    #[command(
        after_help = "Examples:\n  topsellers results --config examples/online-retail.toml --category france --window all\n  topsellers results --data-dir data"
    )]
    Results {
        /// Only this category (default: all categories).
        #[arg(long)]
        category: Option<String>,
        /// Only this window.
        #[arg(long)]
        window: Option<String>,
        /// Items per list.
        #[arg(long, default_value_t = 10)]
        n: usize,
        /// Read the merged results of the [cluster] results store instead of a data directory.
        #[arg(long)]
        cluster: bool,
    },
    /// Validate a config and print it with every default filled in (secrets masked).
    #[command(after_help = "Examples:\n  topsellers check-config --config topsellers.toml")]
    CheckConfig,
}

fn main() {
    // clap would say "a value is required for '--config'" without naming the variable that gave it.
    if std::env::var_os("TOPSELLERS_CONFIG").is_some_and(|v| v.is_empty()) {
        eprintln!(
            "topsellers: error: the environment variable TOPSELLERS_CONFIG is set but empty; set it to the path of \
             a config file, or unset it to use --config or the defaults"
        );
        std::process::exit(2);
    }
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_json);
    if let Err(e) = run(cli) {
        eprintln!("topsellers: error: {}", error_chain(&e));
        std::process::exit(1);
    }
}

/// The error and its causes, `: `-separated like `{:#}`, without a cause whose text the message before it
/// already ends with (errors that print their source, as most store errors do, would show it twice).
pub(crate) fn error_chain(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let line = cause.to_string();
        if text.ends_with(&line) || text.contains(&format!("{line}; ")) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&line);
    }
    text
}

fn init_logging(filter: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn load_config(cli: &Cli) -> Result<Config> {
    let mut config = Config::load(cli.config.as_deref(), &Config::process_env())?;
    if let Some(d) = &cli.data_dir {
        config.data_dir = d.clone();
    }
    Ok(config)
}

fn run(cli: Cli) -> Result<()> {
    let mut config = load_config(&cli)?;
    match cli.command {
        Command::Demo {
            listen,
            backfill_minutes,
            duration_secs,
        } => {
            if let Some(l) = listen {
                config.server.listen = l;
            }
            runtime()?.block_on(demo::run(
                config,
                demo::DemoOptions {
                    backfill_minutes,
                    duration: duration_secs.map(Duration::from_secs),
                },
            ))
        }
        Command::Serve { listen } => {
            if let Some(l) = listen {
                config.server.listen = l;
            }
            let metrics = Arc::new(topsellers_server::Metrics::new());
            let results =
                topsellers_server::Results::with_currency_decimals(config.limits.price_decimals);
            let mut core = node::NodeCore::open(&config, metrics.clone())?;
            let archive = core.bind_live_archive(&config)?;
            runtime()?.block_on(async {
                let running = serve::RunningNode::start(&config, core, archive, results, metrics)?;
                serve::serve_until(&config, running, serve::shutdown_signal()).await
            })
        }
        Command::Replay {
            inputs,
            no_progress: _,
            to: ReplayTarget::Kafka,
        } => {
            let summary = publish::run(&config, &inputs)?;
            summary.print();
            if !summary.unreadable_files.is_empty() {
                anyhow::bail!(
                    "{} input file(s) could not be read (listed above)",
                    summary.unreadable_files.len()
                );
            }
            Ok(())
        }
        Command::Aggregate => aggregate::run(&config, replay::stop_on_signal()),
        Command::Api { listen } => {
            if let Some(l) = listen {
                config.server.listen = l;
            }
            runtime()?.block_on(api::run(config))
        }
        Command::Replay {
            inputs,
            no_progress,
            to: ReplayTarget::Embedded,
        } => {
            let show = !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
            let summary = replay::run(&config, &inputs, show)?;
            summary.print();
            if summary.interrupted {
                std::process::exit(130);
            }
            if !summary.unreadable_files.is_empty() {
                anyhow::bail!(
                    "{} input file(s) could not be read (listed above)",
                    summary.unreadable_files.len()
                );
            }
            Ok(())
        }
        Command::Batch { no_progress } => {
            let show = !no_progress && std::io::IsTerminal::is_terminal(&std::io::stderr());
            batch::run(&config, show)
        }
        Command::Agent => agent::run(&config),
        Command::Archive {
            from: Some(ArchiveSource::Kafka),
            ..
        } => archive::run_from_kafka(&config, replay::stop_on_signal()),
        Command::Archive { inputs, from: None } => archive::run(&config, &inputs),
        Command::Generate { events, out, start } => {
            let start_ms = match start {
                Some(s) => s
                    .parse::<jiff::Timestamp>()
                    .with_context(|| {
                        format!("--start {s:?} is not an RFC 3339 time like 2026-11-01T00:00:00Z")
                    })?
                    .as_millisecond(),
                None => {
                    let span_ms = events as f64 / config.demo.rate_per_sec.max(0.01) * 1000.0;
                    node::wall_clock_ms() - span_ms as i64
                }
            };
            let written = topsellers_gen::write_events(&config.demo, events, start_ms, &out)
                .with_context(|| format!("cannot write {}", out.display()))?;
            eprintln!("topsellers: wrote {written} events to {}", out.display());
            Ok(())
        }
        Command::Results {
            category,
            window,
            n,
            cluster,
        } => {
            let mut offsets = None;
            let snapshot = if cluster {
                let store = cluster::open_store(&config)?;
                let mut follower = cluster::ResultsFollower::new(store);
                let Some(snapshot) = follower.refresh(node::wall_clock_ms())? else {
                    anyhow::bail!(
                        "{} holds no results for topic {} yet; are the aggregators running?",
                        follower.describe(),
                        config.kafka.topic
                    );
                };
                offsets = Some(follower.offsets());
                snapshot
            } else {
                let store = topsellers_store::EmbeddedStore::open_read_only(&config.data_dir)?;
                let Some(snapshot) = store.load_results()? else {
                    anyhow::bail!(
                        "{} holds no results yet; run `topsellers replay` or `topsellers serve` on it first",
                        config.data_dir.display()
                    );
                };
                snapshot
            };
            print_results(&config, &snapshot, offsets, category, window, n)
        }
        Command::CheckConfig => {
            let mut shown = config.clone();
            if shown.server.auth_token.is_some() {
                shown.server.auth_token = Some("********".into());
            }
            shown.cassandra = shown.cassandra.masked();
            shown.redis.urls = shown.redis.masked_urls();
            shown.batch = shown.batch.masked();
            for (key, value) in shown.kafka.client.iter_mut() {
                if key.contains("password") || key.contains("secret") {
                    *value = "********".into();
                }
            }
            print!(
                "{}",
                toml::to_string_pretty(&shown).context("rendering the config")?
            );
            eprintln!("topsellers: config is valid");
            Ok(())
        }
    }
}

fn print_results(
    config: &Config,
    snapshot: &topsellers_model::Snapshot,
    partition_offsets: Option<std::collections::BTreeMap<u32, i64>>,
    category: Option<String>,
    window: Option<String>,
    n: usize,
) -> Result<()> {
    let category = category
        .map(|c| {
            topsellers_model::CategoryPath::parse(&c)
                .map(|p| p.as_str().to_string())
                .with_context(|| format!("--category {c:?}"))
        })
        .transpose()?;
    if let Some(w) = &window {
        if !snapshot.windows.iter().any(|s| &s.name == w) {
            let known: Vec<&str> = snapshot.windows.iter().map(|w| w.name.as_str()).collect();
            anyhow::bail!(
                "--window {w:?} is not one of this data directory's windows: {}",
                known.join(", ")
            );
        }
    }
    if n == 0 || n > snapshot.top_k {
        anyhow::bail!(
            "--n {n} is out of range; use 1 to {} (engine.top_k)",
            snapshot.top_k
        );
    }
    if let Some(c) = &category {
        if !snapshot.lists.contains_key(c) {
            eprintln!(
                "topsellers: category {c:?} has no sales in {}",
                config.data_dir.display()
            );
        }
    }
    let mut lists = Vec::new();
    for (cat, per_window) in &snapshot.lists {
        if category.as_ref().is_some_and(|c| c != cat) {
            continue;
        }
        for list in per_window {
            if window.as_ref().is_some_and(|w| *w != list.window) {
                continue;
            }
            let mut list = list.clone();
            list.items.truncate(n);
            lists.push(list);
        }
    }
    let mut out = serde_json::json!({
        "as_of_ms": snapshot.as_of_ms,
        "version": snapshot.version,
        "events_counted": snapshot.events_counted,
        "currency": snapshot.currency,
        "lists": lists,
    });
    if let Some(offsets) = partition_offsets {
        // Where each partition's results stand: compare with the topic's end offsets to see the lag.
        out["partition_offsets"] = serde_json::json!(offsets);
    }
    outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
