//! moon-core: the specs of moon, their validation, the `Backend` trait and the
//! local backend that runs jobs as supervised processes on one machine.

pub mod backend;
pub mod error;
pub mod spec;

pub use error::{Error, FieldError, FieldErrors, Result};
