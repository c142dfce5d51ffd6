//! The partition store conformance suite (`topsellers_store::partitions::conformance::run_all`) against a
//! real Redis and a real 3-master Redis Cluster; each check uses fresh namespaces, deleted at the end.

mod common;

use common::{Namespaces, Shape};
use topsellers_store::partitions::conformance;
use topsellers_store::PartitionStore;

fn passes_the_suite(shape: Shape) {
    let Some(settings) = common::settings(shape) else {
        return;
    };
    let used = Namespaces::default();
    conformance::run_all(&|namespace: &str| -> Box<dyn PartitionStore> {
        used.add(namespace);
        Box::new(common::open(&settings, namespace))
    });
    used.delete_all(&settings);
}

#[test]
fn standalone_redis_passes_the_conformance_suite() {
    passes_the_suite(Shape::Standalone);
}

#[test]
fn redis_cluster_passes_the_conformance_suite() {
    passes_the_suite(Shape::Cluster);
}
