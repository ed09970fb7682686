//! A script's reference to a primitive in the shared region (a queue, a
//! lock...). Copies of a value share one [`HandleRef`]; each `HandleRef`
//! is one counted reference (`sync::refs`), listed in this process's
//! holdings (`sync::holdings`), and given back when the last copy is
//! dropped. The primitive is freed once no value, queue item or shared
//! cell in any process names it.

use std::sync::Arc;

pub use crate::sync::handle::{Handle, HandleKind};
use crate::sync::{holdings, refs};

#[derive(Clone)]
pub struct HandleRef(Arc<Held>);

struct Held {
    handle: Handle,
    /// Its entry in this process's holdings.
    entry: u32,
}

impl HandleRef {
    /// Takes over the reference a primitive's maker holds (a new one
    /// starts with one reference).
    pub fn adopt(handle: Handle) -> HandleRef {
        HandleRef(Arc::new(Held { handle, entry: holdings::list(handle) }))
    }

    /// A new reference to a primitive that something else (a slot being
    /// read, another value) keeps alive meanwhile.
    pub fn retain(handle: Handle) -> HandleRef {
        refs::retain(handle);
        HandleRef::adopt(handle)
    }

    pub fn handle(&self) -> Handle {
        self.0.handle
    }

    pub fn kind(&self) -> HandleKind {
        self.0.handle.kind()
    }

    pub fn off(&self) -> crate::sync::shm::Off {
        self.0.handle.off()
    }

    pub fn to_bits(&self) -> u64 {
        self.0.handle.to_bits()
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        holdings::unlist(self.entry);
        refs::release(self.handle);
    }
}

impl PartialEq for HandleRef {
    fn eq(&self, other: &HandleRef) -> bool {
        self.handle() == other.handle()
    }
}

impl std::fmt::Debug for HandleRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.handle().fmt(f)
    }
}
