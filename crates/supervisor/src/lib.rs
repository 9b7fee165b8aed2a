//! arbor-supervisor (in progress).
