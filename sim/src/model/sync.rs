//! Sleeping and spinning locks: rwsems, mutexes and spinlocks, with their holders.
//!
//! One representation serves all of them: a mutex or spinlock is an rwsem only ever taken for
//! write. Waiting is not stored here: a CPU whose declared next access is an acquisition that
//! [`RwLock::can_read`]/[`RwLock::can_write`] refuses is simply not runnable (see `engine`).
//! Simplification: no writer preference/handoff (Linux rwsems queue new readers behind a waiting
//! writer); readers may always join readers.

/// A lock word: which CPU holds it for write, and which CPUs hold it for read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RwLock {
    pub writer: Option<u8>,
    /// Bit n set: CPU n holds it for read.
    pub readers: u8,
}

/// One 32-bit word per lock (the search's key hashes every lock at every step): the writer
/// plus one (0: none) in the low 16 bits, the readers above, so equal locks hash equally
/// and distinct ones are distinct words.
impl std::hash::Hash for RwLock {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let RwLock { writer, readers } = *self;
        let writer = writer.map_or(0, |c| u32::from(c) + 1);
        h.write_u32(writer | u32::from(readers) << 16);
    }
}

/// How a CPU holds a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    Read,
    Write,
}

impl RwLock {
    pub fn can_read(&self) -> bool {
        self.writer.is_none()
    }
    pub fn can_write(&self) -> bool {
        self.writer.is_none() && self.readers == 0
    }
    pub fn held_by(&self, cpu: u8) -> Option<Held> {
        if self.writer == Some(cpu) {
            Some(Held::Write)
        } else if self.readers & (1 << cpu) != 0 {
            Some(Held::Read)
        } else {
            None
        }
    }
    pub fn is_locked(&self) -> bool {
        self.writer.is_some() || self.readers != 0
    }
    /// Some holder, for deadlock chains: the writer, else the lowest reader.
    pub fn some_holder(&self) -> Option<u8> {
        self.writer.or(if self.readers != 0 {
            Some(self.readers.trailing_zeros() as u8)
        } else {
            None
        })
    }
}
