//! (Being written: see src/tracking/mod.rs.)
