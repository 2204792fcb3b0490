//! [`Shared`]: a part of the state that copies of the state share until one of them writes
//! it (`Arc` and `Arc::make_mut`), for parts that are large and written less often than the
//! state is copied: a CPU's TLB is 392 bytes, filled and flushed now and then, and the
//! exhaustive search copies the state at every branch.

use std::sync::Arc;

/// Reads go through `Deref`; a mutable access (`DerefMut`) first copies the value if another
/// state shares it. Equality, hashing and `Debug` are those of the value.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Shared<T: Clone>(Arc<T>);

impl<T: Clone> Shared<T> {
    pub fn new(value: T) -> Self {
        Shared(Arc::new(value))
    }
}

impl<T: Clone> std::ops::Deref for Shared<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: Clone + std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_writes_its_own_value_and_leaves_the_other_alone() {
        let a = Shared::new([1u8; 4]);
        let mut b = a.clone();
        assert!(Arc::ptr_eq(&a.0, &b.0), "copies share until written");
        b[0] = 9;
        assert_eq!((a[0], b[0]), (1, 9));
        assert!(!Arc::ptr_eq(&a.0, &b.0));
    }
}
