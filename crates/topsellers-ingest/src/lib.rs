//! Reading purchase files (CSV, JSON lines) through a field mapping into scrubbed events, with dead letters
