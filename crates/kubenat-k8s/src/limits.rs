//! What the importer refuses, per object. An input of any length streams through one object
//! at a time; these bound the one object held at once, far above what the API server stores
//! (it refuses a request over 3 MiB, and etcd an object over 1.5 MiB).

use crate::node::SyntaxError;

/// Deepest nesting of lists and mappings in one object (serde-saphyr's default budget).
pub(crate) const MAX_DEPTH: usize = 64;

/// Most values (scalars, lists, mappings) in one object.
pub(crate) const MAX_OBJECT_NODES: usize = 1_000_000;

/// Largest text of one object, and of all its strings together: 64 MiB.
pub(crate) const MAX_OBJECT_BYTES: usize = 64 << 20;

/// The error for an object whose text passes [`MAX_OBJECT_BYTES`], at `line`.
pub(crate) fn too_long(line: usize) -> SyntaxError {
    SyntaxError {
        line: Some(line),
        message: format!(
            "one object's text exceeds {MAX_OBJECT_BYTES} bytes (the limit for one object)"
        ),
    }
}
