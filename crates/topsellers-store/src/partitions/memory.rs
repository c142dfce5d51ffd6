//! [`MemoryPartitionStore`]: the partition store in memory, for tests of the code that uses one
//! (an aggregator's rebalance handling, an API server's refresh loop) without a file or a service.

use super::{
    Claim, PartitionCheckpoint, PartitionResults, PartitionStore, ResultsMark, StoreBinding,
};
use crate::StoreError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A partition store held in memory. Handles made with [`MemoryPartitionStore::handle`] share the
/// data, like processes sharing one backend; nothing survives the last handle.
#[derive(Clone, Debug)]
pub struct MemoryPartitionStore {
    namespace: String,
    shared: Arc<Mutex<Space>>,
}

#[derive(Debug, Default)]
struct Space {
    bindings: HashMap<String, StoreBinding>,
    /// By namespace, then partition; a BTreeMap so listings come out in partition order.
    partitions: HashMap<String, BTreeMap<u32, Row>>,
}

#[derive(Debug, Default)]
struct Row {
    epoch: u64,
    checkpoint: Option<PartitionCheckpoint>,
    results: Option<PartitionResults>,
}

impl MemoryPartitionStore {
    /// An empty store, opened for `namespace`.
    pub fn new(namespace: &str) -> MemoryPartitionStore {
        MemoryPartitionStore {
            namespace: namespace.to_string(),
            shared: Arc::default(),
        }
    }

    /// Another handle on the same data, opened for `namespace` (the same one or another).
    pub fn handle(&self, namespace: &str) -> MemoryPartitionStore {
        MemoryPartitionStore {
            namespace: namespace.to_string(),
            shared: Arc::clone(&self.shared),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Space> {
        // Every method checks before it changes anything, so a panic elsewhere cannot have left the
        // data half-changed: a poisoned lock is safe to take over.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The row of `partition` after checking that `epoch` is current. A partition never claimed has
    /// no row and epoch 0, which no claim hands out, so every write to it is fenced.
    fn owned_row<'s>(
        &self,
        space: &'s mut Space,
        partition: u32,
        epoch: u64,
    ) -> Result<&'s mut Row, StoreError> {
        let store = self.describe();
        match space
            .partitions
            .get_mut(&self.namespace)
            .and_then(|p| p.get_mut(&partition))
        {
            Some(row) if row.epoch == epoch => Ok(row),
            row => Err(StoreError::Fenced {
                store,
                partition,
                epoch,
                current: row.map_or(0, |r| r.epoch),
            }),
        }
    }

    fn check_results(
        &self,
        row: &Row,
        partition: u32,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let new = results.mark(partition);
        match row.results.as_ref().map(|r| r.mark(partition)) {
            Some(stored) if !stored.may_be_replaced_by(&new) => Err(StoreError::ResultsBehind {
                store: self.describe(),
                partition,
                next_offset: new.next_offset,
                version: new.version,
                stored_offset: stored.next_offset,
                stored_version: stored.version,
            }),
            _ => Ok(()),
        }
    }
}

impl PartitionStore for MemoryPartitionStore {
    fn bind(&self, binding: &StoreBinding) -> Result<(), StoreError> {
        let mut space = self.lock();
        match space.bindings.get(&self.namespace) {
            None => {
                space
                    .bindings
                    .insert(self.namespace.clone(), binding.clone());
                Ok(())
            }
            Some(stored) if stored.partitions != binding.partitions => {
                Err(StoreError::PartitionCountChanged {
                    store: self.describe(),
                    stored: stored.partitions,
                    given: binding.partitions,
                })
            }
            Some(stored) if stored.settings != binding.settings => {
                Err(StoreError::SettingsChanged {
                    store: self.describe(),
                    stored: stored.settings.clone(),
                    given: binding.settings.clone(),
                })
            }
            Some(_) => Ok(()),
        }
    }

    fn claim(&self, partition: u32) -> Result<Claim, StoreError> {
        let mut space = self.lock();
        let partitions = match space.bindings.get(&self.namespace) {
            None => {
                return Err(StoreError::NotBound {
                    store: self.describe(),
                })
            }
            Some(b) => b.partitions,
        };
        if partition >= partitions {
            return Err(StoreError::PartitionOutOfRange {
                store: self.describe(),
                partition,
                partitions,
            });
        }
        let row = space
            .partitions
            .entry(self.namespace.clone())
            .or_default()
            .entry(partition)
            .or_default();
        row.epoch += 1;
        Ok(Claim {
            epoch: row.epoch,
            checkpoint: row.checkpoint.clone(),
            results: row.results.as_ref().map(|r| r.mark(partition)),
        })
    }

    fn save_checkpoint(
        &self,
        partition: u32,
        epoch: u64,
        checkpoint: &PartitionCheckpoint,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let mut space = self.lock();
        let row = self.owned_row(&mut space, partition, epoch)?;
        if let Some(stored) = row
            .checkpoint
            .as_ref()
            .filter(|c| checkpoint.next_offset < c.next_offset)
        {
            return Err(StoreError::PartitionCheckpointBehind {
                store: self.describe(),
                partition,
                next_offset: checkpoint.next_offset,
                stored: stored.next_offset,
            });
        }
        self.check_results(row, partition, results)?;
        row.checkpoint = Some(checkpoint.clone());
        row.results = Some(results.clone());
        Ok(())
    }

    fn save_results(
        &self,
        partition: u32,
        epoch: u64,
        results: &PartitionResults,
    ) -> Result<(), StoreError> {
        let mut space = self.lock();
        let row = self.owned_row(&mut space, partition, epoch)?;
        self.check_results(row, partition, results)?;
        row.results = Some(results.clone());
        Ok(())
    }

    fn result_versions(&self) -> Result<Vec<ResultsMark>, StoreError> {
        let space = self.lock();
        Ok(space
            .partitions
            .get(&self.namespace)
            .into_iter()
            .flatten()
            .filter_map(|(&p, row)| row.results.as_ref().map(|r| r.mark(p)))
            .collect())
    }

    fn load_results(&self, partition: u32) -> Result<Option<PartitionResults>, StoreError> {
        let space = self.lock();
        Ok(space
            .partitions
            .get(&self.namespace)
            .and_then(|p| p.get(&partition))
            .and_then(|row| row.results.clone()))
    }

    fn describe(&self) -> String {
        format!("in-memory partition store (namespace {})", self.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partitions::conformance;

    #[test]
    fn passes_the_conformance_suite() {
        let backend = MemoryPartitionStore::new("unused");
        conformance::run_all(&|namespace: &str| -> Box<dyn PartitionStore> {
            Box::new(backend.handle(namespace))
        });
    }
}
