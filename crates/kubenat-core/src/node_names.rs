//! Node names, one shared copy each: a million Services' endpoints name a few thousand
//! nodes, so the compiled tables point at one string per node.

use std::sync::Arc;

use hashbrown::HashSet;

use crate::tables::{FixedState, fixed_state};

/// Every node name compiled so far.
#[derive(Clone, Debug)]
pub(crate) struct NodeNames {
    names: HashSet<Arc<str>, FixedState>,
}

impl Default for NodeNames {
    fn default() -> NodeNames {
        NodeNames {
            names: HashSet::with_hasher(fixed_state()),
        }
    }
}

impl NodeNames {
    /// The shared copy of `name`.
    pub(crate) fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.names.get(name) {
            return known.clone();
        }
        let name: Arc<str> = Arc::from(name);
        self.names.insert(name.clone());
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_name() {
        let mut names = NodeNames::default();
        let a = names.intern("node-a");
        assert!(Arc::ptr_eq(&a, &names.intern("node-a")));
        assert!(!Arc::ptr_eq(&a, &names.intern("node-b")));
        assert_eq!(&*names.intern("node-b"), "node-b");
    }
}
