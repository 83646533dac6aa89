//! The admission benchmark's parts: a seeded synthetic cluster and queue
//! ([`scenario`]), and the naive reference it is measured against
//! ([`naive`]), which must decide exactly as `moon_queue::plan` does.

pub mod naive;
pub mod scenario;
