//! A handle to a primitive in the shared region: its kind and offset,
//! packed in one word so a value stays 16 bytes. A handle is the same
//! object in every thread and process, and it travels through queues.

use super::shm::Off;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HandleKind {
    Queue = 1,
    Lock = 2,
    Semaphore = 3,
    Condition = 4,
    Event = 5,
    /// `shared(v)` of a single value.
    Cell = 6,
    /// `shared([...])`: a shared list.
    Array = 7,
    /// One end of a pipe.
    Pipe = 8,
    /// `shared({...})`: a shared map.
    Map = 9,
}

impl HandleKind {
    pub fn name(self) -> &'static str {
        match self {
            HandleKind::Queue => "queue",
            HandleKind::Lock => "lock",
            HandleKind::Semaphore => "semaphore",
            HandleKind::Condition => "condition",
            HandleKind::Event => "event",
            HandleKind::Cell | HandleKind::Array | HandleKind::Map => "shared",
            HandleKind::Pipe => "pipe",
        }
    }

    /// `a lock`, `an event`.
    pub fn a_name(self) -> String {
        let name = self.name();
        let article = if name.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        format!("{article} {name}")
    }

    /// The fields `x.name` reads on a primitive of this kind.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            HandleKind::Queue => &["size", "full", "empty", "capacity", "closed"],
            HandleKind::Lock => &["locked"],
            HandleKind::Semaphore | HandleKind::Cell | HandleKind::Array | HandleKind::Map => &["value"],
            HandleKind::Event => &["is_set"],
            HandleKind::Condition | HandleKind::Pipe => &[],
        }
    }

    fn from_u8(byte: u8) -> Option<HandleKind> {
        Some(match byte {
            1 => HandleKind::Queue,
            2 => HandleKind::Lock,
            3 => HandleKind::Semaphore,
            4 => HandleKind::Condition,
            5 => HandleKind::Event,
            6 => HandleKind::Cell,
            7 => HandleKind::Array,
            8 => HandleKind::Pipe,
            9 => HandleKind::Map,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Handle(u64);

const OFF_BITS: u32 = 56;

impl Handle {
    pub fn new(kind: HandleKind, off: Off) -> Handle {
        Handle(((kind as u64) << OFF_BITS) | (off & ((1 << OFF_BITS) - 1)))
    }

    pub fn kind(self) -> HandleKind {
        HandleKind::from_u8((self.0 >> OFF_BITS) as u8).unwrap_or(HandleKind::Queue)
    }

    pub fn off(self) -> Off {
        self.0 & ((1 << OFF_BITS) - 1)
    }

    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// A handle read back from bytes, if its kind is known.
    pub fn from_bits(bits: u64) -> Option<Handle> {
        HandleKind::from_u8((bits >> OFF_BITS) as u8).map(|_| Handle(bits))
    }
}
