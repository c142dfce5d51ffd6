//! `[cassandra]`: where the cluster is, the keyspace topsellers creates, its replication, and the
//! consistency levels of reads, writes and lightweight transactions.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The name of the config section, in front of every key that [`CassandraSettings::validate`] names.
pub const SECTION: &str = "cassandra";

/// Longest keyspace name Cassandra accepts.
const MAX_KEYSPACE_LEN: usize = 48;

/// How topsellers reaches Cassandra and lays out its keyspace.
///
/// ```
/// use topsellers_cassandra::{CassandraSettings, Consistency};
///
/// let settings: CassandraSettings = toml::from_str(
///     r#"
///     contact_points = ["10.0.0.1:9042", "10.0.0.2:9042"]
///     keyspace = "shop_results"
///     local_datacenter = "eu-west"
///     read_consistency = "LOCAL_QUORUM"
///     write_consistency = "LOCAL_QUORUM"
///     serial_consistency = "LOCAL_SERIAL"
///     replication = { strategy = "NetworkTopologyStrategy", datacenters = { eu-west = 3 } }
///     "#,
/// )
/// .unwrap();
/// assert!(settings.validate().is_empty());
/// assert_eq!(settings.read_consistency, Consistency::LocalQuorum);
/// assert_eq!(
///     settings.replication.cql_map(),
///     "{'class': 'NetworkTopologyStrategy', 'eu-west': 3}"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CassandraSettings {
    /// `host:port` of one or more nodes to connect to first; the driver discovers the rest of the ring.
    pub contact_points: Vec<String>,
    /// The keyspace topsellers creates (if missing) and keeps its tables in.
    pub keyspace: String,
    /// Replication of the keyspace when topsellers creates it. An existing keyspace is never altered
    /// (changing replication needs a repair, an operator's decision); a difference is logged.
    pub replication: ReplicationSettings,
    /// Consistency of reads (results, marks, checkpoint chunks). Reads and writes must overlap
    /// (read + write replicas > replication factor, as QUORUM + QUORUM do), or a reader can miss a save.
    pub read_consistency: Consistency,
    /// Consistency of writes: checkpoint and results chunks, and the commit of every lightweight
    /// transaction.
    pub write_consistency: Consistency,
    /// Consistency of the Paxos round of lightweight transactions (claims and saves) and of the reads
    /// that precede them: `SERIAL` (all datacenters) or `LOCAL_SERIAL` (the local one).
    pub serial_consistency: SerialConsistency,
    /// How long one request may take, in milliseconds (the driver's client-side timeout).
    pub request_timeout_ms: u64,
    /// How long opening a connection to a node may take, in milliseconds.
    pub connect_timeout_ms: u64,
    /// User name for Cassandra's password authenticator (with `password`).
    pub username: Option<String>,
    /// Password for `username`; never printed.
    pub password: Option<Secret>,
    /// The datacenter whose nodes are preferred as coordinators and that `LOCAL_*` levels refer to.
    pub local_datacenter: Option<String>,
}

impl Default for CassandraSettings {
    fn default() -> Self {
        CassandraSettings {
            contact_points: vec!["127.0.0.1:9042".into()],
            keyspace: "topsellers".into(),
            replication: ReplicationSettings::default(),
            read_consistency: Consistency::Quorum,
            write_consistency: Consistency::Quorum,
            serial_consistency: SerialConsistency::Serial,
            request_timeout_ms: 12_000,
            connect_timeout_ms: 5_000,
            username: None,
            password: None,
            local_datacenter: None,
        }
    }
}

impl CassandraSettings {
    /// Every problem, each naming its key (`cassandra.<key>`).
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.contact_points.is_empty() {
            errors.push(format!(
                "{SECTION}.contact_points is empty; give at least one \"host:port\" of a Cassandra node"
            ));
        }
        for point in &self.contact_points {
            if let Some(problem) = contact_point_problem(point) {
                errors.push(format!("{SECTION}.contact_points: {point:?} {problem}"));
            }
        }
        if let Some(problem) = keyspace_problem(&self.keyspace) {
            errors.push(format!("{SECTION}.keyspace {:?} {problem}", self.keyspace));
        }
        errors.extend(self.replication.validate());
        errors.extend(self.overlap_problems());
        if self.read_consistency == Consistency::EachQuorum {
            errors.push(format!(
                "{SECTION}.read_consistency EACH_QUORUM is for writes only; use QUORUM or LOCAL_QUORUM"
            ));
        }
        for (key, value, range) in [
            ("request_timeout_ms", self.request_timeout_ms, 100..=600_000),
            ("connect_timeout_ms", self.connect_timeout_ms, 100..=120_000),
        ] {
            if !range.contains(&value) {
                errors.push(format!(
                    "{SECTION}.{key} is {value}; use a value from {} to {}",
                    range.start(),
                    range.end()
                ));
            }
        }
        match (&self.username, &self.password) {
            (Some(user), _) if user.is_empty() => errors.push(format!(
                "{SECTION}.username is empty; remove it or name the Cassandra role"
            )),
            (Some(_), None) => errors.push(format!(
                "{SECTION}.password is missing; give it with {SECTION}.username"
            )),
            (None, Some(_)) => errors.push(format!(
                "{SECTION}.username is missing; give it with {SECTION}.password"
            )),
            _ => {}
        }
        match &self.local_datacenter {
            Some(dc) if dc.trim().is_empty() => errors.push(format!(
                "{SECTION}.local_datacenter is empty; remove it or name the datacenter"
            )),
            None => {
                let local = [
                    ("read_consistency", self.read_consistency.is_local()),
                    ("write_consistency", self.write_consistency.is_local()),
                    (
                        "serial_consistency",
                        self.serial_consistency == SerialConsistency::LocalSerial,
                    ),
                ];
                for (key, _) in local.iter().filter(|(_, is_local)| *is_local) {
                    errors.push(format!(
                        "{SECTION}.{key} is a LOCAL_ level but {SECTION}.local_datacenter is not set; \
                         name the datacenter that \"local\" means"
                    ));
                }
            }
            Some(_) => {}
        }
        errors
    }

    /// Reads must see every acknowledged save: the replicas a read asks plus the replicas a write waits
    /// for must exceed the replication factor. ONE + ONE at factor 3 (or a level needing more replicas
    /// than exist) is refused here rather than found out as a missed checkpoint, which would count
    /// events twice. Checked where the factor that applies is known: SimpleStrategy, or both levels
    /// LOCAL_ with `local_datacenter` listed in the datacenters, or both global under
    /// NetworkTopologyStrategy (the factors summed).
    fn overlap_problems(&self) -> Vec<String> {
        let replication = &self.replication;
        let (read, write) = (self.read_consistency, self.write_consistency);
        let factor = match replication.strategy {
            ReplicationStrategy::SimpleStrategy => Some(replication.factor.unwrap_or(1)),
            ReplicationStrategy::NetworkTopologyStrategy => {
                match (read.is_local(), write.is_local()) {
                    (false, false) => Some(replication.datacenters.values().sum()),
                    (true, true) => self
                        .local_datacenter
                        .as_ref()
                        .and_then(|dc| replication.datacenters.get(dc).copied()),
                    _ => None,
                }
            }
        };
        let Some(factor) = factor.filter(|f| *f > 0) else {
            return Vec::new();
        };
        let (Some(read_replicas), Some(write_replicas)) =
            (read.replicas(factor), write.replicas(factor))
        else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (key, level, replicas) in [
            ("read_consistency", read, read_replicas),
            ("write_consistency", write, write_replicas),
        ] {
            if replicas > factor {
                problems.push(format!(
                    "{SECTION}.{key} {level} needs {replicas} replicas but the replication factor is \
                     {factor}, so every request would fail; use QUORUM"
                ));
            }
        }
        if problems.is_empty() && read_replicas + write_replicas <= factor {
            problems.push(format!(
                "{SECTION}.read_consistency {read} and {SECTION}.write_consistency {write} ask \
                 {read_replicas} + {write_replicas} of {factor} replicas, so a read can miss a save and \
                 a moved partition could count events twice; use QUORUM for both (or make read + write \
                 replicas exceed the replication factor)"
            ));
        }
        problems
    }

    /// [`Self::request_timeout_ms`] as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`Self::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// A copy fit for printing: the password replaced by `********`.
    pub fn masked(&self) -> CassandraSettings {
        CassandraSettings {
            password: self.password.as_ref().map(|_| Secret::new("********")),
            ..self.clone()
        }
    }
}

/// `[cassandra.replication]`: how the keyspace is replicated when topsellers creates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationSettings {
    pub strategy: ReplicationStrategy,
    /// Copies of every row, for `SimpleStrategy` (default 1: a single development node; use 3 in
    /// production).
    pub factor: Option<u32>,
    /// Copies per datacenter, for `NetworkTopologyStrategy`, e.g. `{ eu-west = 3, us-east = 3 }`.
    pub datacenters: BTreeMap<String, u32>,
}

impl Default for ReplicationSettings {
    fn default() -> Self {
        ReplicationSettings {
            strategy: ReplicationStrategy::SimpleStrategy,
            factor: None,
            datacenters: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicationStrategy {
    /// One ring, replicas on the next nodes clockwise: one datacenter, or development.
    SimpleStrategy,
    /// A replication factor per datacenter, rack-aware: production.
    NetworkTopologyStrategy,
}

impl ReplicationSettings {
    fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let key = format!("{SECTION}.replication");
        let range = 1..=32u32;
        match self.strategy {
            ReplicationStrategy::SimpleStrategy => {
                if let Some(f) = self.factor.filter(|f| !range.contains(f)) {
                    errors.push(format!("{key}.factor is {f}; use a value from 1 to 32"));
                }
                if !self.datacenters.is_empty() {
                    errors.push(format!(
                        "{key}.datacenters is for NetworkTopologyStrategy; remove it or set \
                         {key}.strategy = \"NetworkTopologyStrategy\""
                    ));
                }
            }
            ReplicationStrategy::NetworkTopologyStrategy => {
                if self.factor.is_some() {
                    errors.push(format!(
                        "{key}.factor is for SimpleStrategy; give NetworkTopologyStrategy a factor per \
                         datacenter in {key}.datacenters"
                    ));
                }
                if self.datacenters.is_empty() {
                    errors.push(format!(
                        "{key}.datacenters is empty; NetworkTopologyStrategy needs a factor per datacenter, \
                         e.g. {{ dc1 = 3 }}"
                    ));
                }
                for (dc, factor) in &self.datacenters {
                    if dc.is_empty() || dc.contains(['\'', '\\']) || dc == "class" {
                        errors.push(format!(
                            "{key}.datacenters: {dc:?} is not a datacenter name"
                        ));
                    }
                    if !range.contains(factor) {
                        errors.push(format!(
                            "{key}.datacenters.{dc} is {factor}; use a value from 1 to 32"
                        ));
                    }
                }
            }
        }
        errors
    }

    /// The replication map of `CREATE KEYSPACE ... WITH replication = <this>`.
    pub fn cql_map(&self) -> String {
        match self.strategy {
            ReplicationStrategy::SimpleStrategy => format!(
                "{{'class': 'SimpleStrategy', 'replication_factor': {}}}",
                self.factor.unwrap_or(1)
            ),
            ReplicationStrategy::NetworkTopologyStrategy => {
                let mut map = "{'class': 'NetworkTopologyStrategy'".to_string();
                for (dc, factor) in &self.datacenters {
                    map.push_str(&format!(", '{dc}': {factor}"));
                }
                map.push('}');
                map
            }
        }
    }

    /// The replication options as Cassandra lists them in `system_schema.keyspaces`, for comparing
    /// with an existing keyspace.
    pub(crate) fn as_options(&self) -> BTreeMap<String, String> {
        let mut options = BTreeMap::new();
        match self.strategy {
            ReplicationStrategy::SimpleStrategy => {
                options.insert(
                    "class".into(),
                    "org.apache.cassandra.locator.SimpleStrategy".into(),
                );
                options.insert(
                    "replication_factor".into(),
                    self.factor.unwrap_or(1).to_string(),
                );
            }
            ReplicationStrategy::NetworkTopologyStrategy => {
                options.insert(
                    "class".into(),
                    "org.apache.cassandra.locator.NetworkTopologyStrategy".into(),
                );
                for (dc, factor) in &self.datacenters {
                    options.insert(dc.clone(), factor.to_string());
                }
            }
        }
        options
    }
}

/// Consistency level of reads and writes, by Cassandra's names (`QUORUM`, `LOCAL_QUORUM`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Consistency {
    One,
    Two,
    Three,
    Quorum,
    All,
    LocalQuorum,
    EachQuorum,
    LocalOne,
}

impl Consistency {
    fn is_local(self) -> bool {
        matches!(self, Consistency::LocalQuorum | Consistency::LocalOne)
    }

    /// How many replicas a request at this level involves when the factor that applies is `factor`;
    /// `None` where it depends on more than one datacenter (EACH_QUORUM).
    fn replicas(self, factor: u32) -> Option<u32> {
        match self {
            Consistency::One | Consistency::LocalOne => Some(1),
            Consistency::Two => Some(2),
            Consistency::Three => Some(3),
            Consistency::Quorum | Consistency::LocalQuorum => Some(factor / 2 + 1),
            Consistency::All => Some(factor),
            Consistency::EachQuorum => None,
        }
    }

    pub(crate) fn to_driver(self) -> scylla::statement::Consistency {
        use scylla::statement::Consistency as C;
        match self {
            Consistency::One => C::One,
            Consistency::Two => C::Two,
            Consistency::Three => C::Three,
            Consistency::Quorum => C::Quorum,
            Consistency::All => C::All,
            Consistency::LocalQuorum => C::LocalQuorum,
            Consistency::EachQuorum => C::EachQuorum,
            Consistency::LocalOne => C::LocalOne,
        }
    }
}

impl fmt::Display for Consistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Consistency::One => "ONE",
            Consistency::Two => "TWO",
            Consistency::Three => "THREE",
            Consistency::Quorum => "QUORUM",
            Consistency::All => "ALL",
            Consistency::LocalQuorum => "LOCAL_QUORUM",
            Consistency::EachQuorum => "EACH_QUORUM",
            Consistency::LocalOne => "LOCAL_ONE",
        };
        f.write_str(name)
    }
}

/// Consistency of the Paxos round of lightweight transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SerialConsistency {
    /// A quorum of the replicas in all datacenters.
    Serial,
    /// A quorum of the replicas in the local datacenter (`local_datacenter`).
    LocalSerial,
}

impl SerialConsistency {
    pub(crate) fn to_driver(self) -> scylla::statement::SerialConsistency {
        match self {
            SerialConsistency::Serial => scylla::statement::SerialConsistency::Serial,
            SerialConsistency::LocalSerial => scylla::statement::SerialConsistency::LocalSerial,
        }
    }

    /// The level of a read that must see every committed lightweight transaction.
    pub(crate) fn as_read(self) -> scylla::statement::Consistency {
        match self {
            SerialConsistency::Serial => scylla::statement::Consistency::Serial,
            SerialConsistency::LocalSerial => scylla::statement::Consistency::LocalSerial,
        }
    }
}

impl fmt::Display for SerialConsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SerialConsistency::Serial => "SERIAL",
            SerialConsistency::LocalSerial => "LOCAL_SERIAL",
        })
    }
}

/// A secret (a password): serialized as it is, but `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, to hand to the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(********)")
    }
}

fn contact_point_problem(point: &str) -> Option<&'static str> {
    let Some((host, port)) = point.rsplit_once(':') else {
        return Some("has no port; write it as host:port, e.g. 127.0.0.1:9042");
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Some("has no host; write it as host:port, e.g. 127.0.0.1:9042");
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => None,
        _ => Some("has no valid port (1 to 65535); write it as host:port, e.g. 127.0.0.1:9042"),
    }
}

/// Unquoted CQL identifiers are case-insensitive; asking for lowercase avoids two spellings of one
/// keyspace.
fn keyspace_problem(name: &str) -> Option<&'static str> {
    let mut bytes = name.bytes();
    match bytes.next() {
        None => Some("is empty; name the keyspace, e.g. topsellers"),
        Some(b) if !b.is_ascii_lowercase() => {
            Some("must start with a lowercase letter and use only a-z, 0-9 and _")
        }
        _ if name.len() > MAX_KEYSPACE_LEN => Some("is longer than Cassandra's 48 characters"),
        _ if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') => {
            Some("must start with a lowercase letter and use only a-z, 0-9 and _")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let s = CassandraSettings::default();
        assert!(s.validate().is_empty(), "{:?}", s.validate());
        assert_eq!(
            s.replication.cql_map(),
            "{'class': 'SimpleStrategy', 'replication_factor': 1}"
        );
    }

    /// QA: ONE + ONE at replication factor 3 was accepted; a read could miss a checkpoint save.
    #[test]
    fn reads_and_writes_must_overlap() {
        let at = |factor: u32, read, write| CassandraSettings {
            replication: ReplicationSettings {
                factor: Some(factor),
                ..ReplicationSettings::default()
            },
            read_consistency: read,
            write_consistency: write,
            ..CassandraSettings::default()
        };
        use Consistency::*;
        for (factor, read, write) in [
            (3, Quorum, Quorum),
            (3, One, All),
            (3, Two, Two),
            (1, One, One),
        ] {
            let errors = at(factor, read, write).validate();
            assert!(errors.is_empty(), "{factor} {read} {write}: {errors:?}");
        }
        let errors = at(3, One, One).validate().join("\n");
        assert!(
            errors.contains("ask 1 + 1 of 3 replicas") && errors.contains("use QUORUM"),
            "{errors}"
        );
        let errors = at(1, Quorum, Three).validate().join("\n");
        assert!(
            errors.contains(
                "write_consistency THREE needs 3 replicas but the replication factor is 1"
            ),
            "{errors}"
        );
        // Global levels under NetworkTopologyStrategy count every datacenter's copies.
        let nts = CassandraSettings {
            replication: ReplicationSettings {
                strategy: ReplicationStrategy::NetworkTopologyStrategy,
                factor: None,
                datacenters: BTreeMap::from([("a".into(), 3), ("b".into(), 3)]),
            },
            read_consistency: Two,
            write_consistency: Three,
            ..CassandraSettings::default()
        };
        assert!(nts
            .validate()
            .join("\n")
            .contains("ask 2 + 3 of 6 replicas"));
    }

    #[test]
    fn names_every_problem() {
        let s = CassandraSettings {
            contact_points: vec!["127.0.0.1".into(), ":9042".into(), "h:0".into()],
            keyspace: "Top-Sellers".into(),
            read_consistency: Consistency::EachQuorum,
            write_consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout_ms: 5,
            connect_timeout_ms: 0,
            username: Some("ts".into()),
            replication: ReplicationSettings {
                strategy: ReplicationStrategy::NetworkTopologyStrategy,
                factor: Some(3),
                datacenters: BTreeMap::from([("dc1".into(), 0)]),
            },
            ..CassandraSettings::default()
        };
        let errors = s.validate();
        let text = errors.join("\n");
        for needle in [
            "cassandra.contact_points: \"127.0.0.1\" has no port",
            "cassandra.contact_points: \":9042\" has no host",
            "cassandra.contact_points: \"h:0\" has no valid port",
            "cassandra.keyspace \"Top-Sellers\"",
            "cassandra.replication.factor is for SimpleStrategy",
            "cassandra.replication.datacenters.dc1 is 0",
            "cassandra.read_consistency EACH_QUORUM",
            "cassandra.request_timeout_ms is 5",
            "cassandra.connect_timeout_ms is 0",
            "cassandra.password is missing",
            "cassandra.write_consistency is a LOCAL_ level",
            "cassandra.serial_consistency is a LOCAL_ level",
        ] {
            assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
        }
        assert_eq!(errors.len(), 12, "{text}");
    }

    #[test]
    fn simple_strategy_rejects_datacenters_and_a_zero_factor() {
        let r = ReplicationSettings {
            strategy: ReplicationStrategy::SimpleStrategy,
            factor: Some(0),
            datacenters: BTreeMap::from([("dc1".into(), 3)]),
        };
        let text = r.validate().join("\n");
        assert!(text.contains("cassandra.replication.factor is 0"), "{text}");
        assert!(
            text.contains("cassandra.replication.datacenters is for NetworkTopologyStrategy"),
            "{text}"
        );
    }

    #[test]
    fn keyspace_names() {
        for ok in ["topsellers", "ts_2", "a"] {
            assert_eq!(keyspace_problem(ok), None, "{ok}");
        }
        for bad in ["", "2ts", "_ts", "TS", "ts-x", "ts x", &"a".repeat(49)] {
            assert!(keyspace_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_levels_are_refused() {
        let err = toml::from_str::<CassandraSettings>("keyspace = \"x\"\nhosts = []").unwrap_err();
        assert!(err.to_string().contains("unknown field `hosts`"), "{err}");
        let err = toml::from_str::<CassandraSettings>("read_consistency = \"quorum\"").unwrap_err();
        assert!(err.to_string().contains("QUORUM"), "{err}");
        let err =
            toml::from_str::<CassandraSettings>("replication = { class = \"SimpleStrategy\" }")
                .unwrap_err();
        assert!(err.to_string().contains("unknown field `class`"), "{err}");
    }

    #[test]
    fn the_password_never_prints() {
        let s = CassandraSettings {
            username: Some("ts".into()),
            password: Some(Secret::new("hunter2")),
            ..CassandraSettings::default()
        };
        assert!(s.validate().is_empty());
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!toml::to_string(&s.masked()).unwrap().contains("hunter2"));
        assert_eq!(s.password.as_ref().unwrap().expose(), "hunter2");
    }

    #[test]
    fn replication_options_match_what_cassandra_lists() {
        let nts = ReplicationSettings {
            strategy: ReplicationStrategy::NetworkTopologyStrategy,
            factor: None,
            datacenters: BTreeMap::from([("dc1".into(), 3), ("dc2".into(), 2)]),
        };
        assert_eq!(
            nts.cql_map(),
            "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
        );
        assert_eq!(nts.as_options()["dc2"], "2");
        assert!(nts.as_options()["class"].ends_with(".NetworkTopologyStrategy"));
    }
}
