//! `topsellers agent`: builds the agent of `topsellers-agent` from the config (its downstream: an embedded node
//! over HTTP, or the Kafka topic through the same publisher as `replay --to kafka`) and runs it until SIGTERM.

use crate::config::Config;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use topsellers_agent::{Agent, AgentEvent, DeliveryError, Downstream, DownstreamConfig, NodeHttp};
use topsellers_kafka::{KafkaSettings, Publisher};

/// The Kafka topic as a downstream: a batch is acknowledged once every event of it is acknowledged by all
/// in-sync replicas (the publisher is idempotent, `acks=all`). After a failure the producer is made anew and the
/// whole batch sent again, with the same event ids, so the aggregators drop what had arrived.
struct KafkaDownstream {
    settings: KafkaSettings,
    price_decimals: u32,
    publisher: Option<Publisher>,
    /// Events were published since the last tick.
    untick: bool,
}

impl Downstream for KafkaDownstream {
    fn deliver(&mut self, events: &[AgentEvent]) -> Result<(), DeliveryError> {
        if self.publisher.is_none() {
            let p = Publisher::connect(&self.settings, self.price_decimals)
                .map_err(|e| DeliveryError::Unavailable(format!("kafka: {e}")))?;
            self.publisher = Some(p);
        }
        let publisher = self.publisher.as_mut().expect("connected above");
        let outcome = events
            .iter()
            .try_for_each(|e| {
                publisher.publish_keyed(&e.event, e.customer_key.as_ref().map(|k| k.as_str()))
            })
            .and_then(|()| publisher.flush().map(|_| ()));
        outcome.map_err(|e| {
            self.publisher = None;
            DeliveryError::Unavailable(format!("kafka: {e}"))
        })?;
        self.untick = true;
        Ok(())
    }

    /// Idle files: every partition may advance event time to the newest event published (as `replay --to kafka`
    /// does at the end of its input), so quiet partitions close their windows too.
    fn idle(&mut self) -> Result<(), DeliveryError> {
        if !self.untick {
            return Ok(());
        }
        let Some(publisher) = self.publisher.as_mut() else {
            return Ok(());
        };
        publisher.finish().map_err(|e| {
            self.publisher = None;
            DeliveryError::Unavailable(format!("kafka: {e}"))
        })?;
        self.untick = false;
        Ok(())
    }

    fn describe(&self) -> String {
        format!(
            "kafka topic {} at {}",
            self.settings.topic, self.settings.bootstrap_servers
        )
    }
}

/// Where the agent keeps its positions and dead letters.
pub fn state_dir(config: &Config) -> PathBuf {
    config
        .agent
        .state_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("agent"))
}

pub fn run(config: &Config) -> Result<()> {
    if config.agent.files.is_empty() && config.agent.http.is_none() && config.agent.log4j2.is_none()
    {
        bail!("the config has no [[agent.files]], [agent.http] or [agent.log4j2]; add one (see examples/agent.toml)");
    }
    let downstream: Box<dyn Downstream> = match &config.agent.downstream {
        DownstreamConfig::Node {
            url,
            auth_token,
            timeout_ms,
        } => Box::new(
            NodeHttp::new(
                url,
                auth_token.clone(),
                *timeout_ms,
                config.limits.price_decimals,
            )
            .map_err(anyhow::Error::msg)
            .context("agent.downstream")?,
        ),
        DownstreamConfig::Kafka => Box::new(KafkaDownstream {
            settings: config.kafka.clone(),
            price_decimals: config.limits.price_decimals,
            publisher: None,
            untick: false,
        }),
    };
    let dir = state_dir(config);
    let mut agent = Agent::new(&config.agent, &config.limits, &dir, downstream)?;
    let stop = crate::replay::stop_on_signal();
    let intake = match &config.agent.http {
        Some(http) => Some(topsellers_agent::intake::start(
            http,
            &config.limits,
            config.agent.customer_key.as_ref(),
            &dir,
            stop.clone(),
        )?),
        None => None,
    };
    let log4j2 = match &config.agent.log4j2 {
        Some(l) => topsellers_agent::log4j2::start(
            l,
            &config.limits,
            config.agent.customer_key.as_ref(),
            &dir,
            stop.clone(),
        )?,
        None => Vec::new(),
    };
    let stats = agent.run(&stop)?;
    for handle in intake.into_iter().chain(log4j2) {
        let _ = handle.join();
    }
    outln!(
        "topsellers agent: {} lines, {} events delivered, {} dead letters ({}), {} pieces of personal data redacted",
        stats.lines,
        stats.delivered,
        stats.rejected,
        agent.dead_letter_path().display(),
        stats.redactions.total()
    );
    Ok(())
}
