//! What can go wrong when building or restoring an engine.

/// Errors from [`crate::Engine::new`] and [`crate::Engine::restore`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// The configuration has problems; each entry names the key and the fix.
    #[error("invalid engine configuration: {}", .0.join("; "))]
    InvalidConfig(Vec<String>),
    /// The checkpoint bytes cannot be read.
    #[error("engine checkpoint is corrupt ({reason}); rebuild the data directory by replaying the inputs")]
    CorruptCheckpoint { reason: String },
    /// The checkpoint was written by an engine with a different checkpoint format.
    #[error("engine checkpoint has format version {found}, this build reads version {expected}; run the matching topsellers version or rebuild the data directory by replaying the inputs")]
    UnsupportedCheckpointVersion { found: u8, expected: u8 },
    /// The checkpoint was written with other bucket or window settings, so its buckets mean something else.
    #[error("engine checkpoint was written with {setting} = {written}, but the config says {configured}; keep the old settings or rebuild the data directory by replaying the inputs")]
    CheckpointSettingsMismatch {
        setting: &'static str,
        written: String,
        configured: String,
    },
}
