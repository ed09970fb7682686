//! What the evaluator computes with and on: values, errors, printing,
//! output. Knows nothing of the syntax tree.

pub mod bias;
pub mod blocks;
pub mod child;
pub mod color;
pub mod error;
pub mod files;
pub mod format;
pub mod future;
pub mod handle;
pub mod json;
pub mod keyhash;
pub mod output;
pub mod pool;
pub mod progress;
pub mod stack;
pub mod stdin;
pub mod table;
pub mod task;
pub mod teardown;
pub mod text;
pub mod threadlocal;
pub mod value;
pub mod wire;

pub use error::{ErrorValue, Fault, Kind};
pub use text::Str;
pub use value::Value;
