//! What clients and the agent say to each other over the agent's socket:
//! one JSON request line, then JSON reply lines.

use serde::{Deserialize, Serialize};

use crate::backend::Event;

/// A client's request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Request {
    /// Something changed in the database (a submission, a cancel, a quota): look again.
    Kick,
    /// Stream this job's events after `after`, ending after its last.
    Watch {
        /// Job row id.
        job: i64,
        /// Last event seen.
        after: u64,
    },
}

/// A line the agent sends back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Reply {
    /// The request was taken.
    Ok {
        /// The agent's pid.
        pid: u32,
    },
    /// One event of a watched job.
    Event {
        /// The event.
        event: Event,
    },
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}
