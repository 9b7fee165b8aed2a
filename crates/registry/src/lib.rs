//! arbor-registry (in progress).
