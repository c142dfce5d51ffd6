//! Exact sliding-window top-N per category: buckets, windows, roll-ups, refunds, dedup, watermark
