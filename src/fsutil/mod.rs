//! Files on disk: bounded reads that never block ([`read`]), atomic writes
//! ([`write`]), and spare files that replace many files in a row ([`spares`]).

mod copy;
mod read;
mod spares;
mod write;

pub use copy::*;
pub use read::*;
pub use spares::*;
pub use write::*;
