//! arbor facade (in progress).
