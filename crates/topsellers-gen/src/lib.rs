//! Realistic generated purchase traffic: a category tree, Zipf popularity, refunds, duplicates, late events
