//! Picking up after a crash of the agent. Every attempt the database has
//! launching or running was left by the agent before; its files tell what
//! became of it: a supervisor still runs it (adopt it), it ended (record
//! the end), or no supervisor ever claimed it (abandon it, so that the
//! replica starts afresh). The claim file decides the race with a
//! supervisor that starts just now: whoever creates it first owns the
//! attempt.

use super::layout::Layout;
use super::process::is_same_process;
use super::store::{self, AttemptKey, Connection};
use super::supervisor::{self, Claim};
use crate::error::Result;

/// What became of an attempt in flight when the agent died.
pub enum Found {
    /// No supervisor claimed it, and now none can: it never ran.
    Unclaimed,
    /// Its supervisor, this pid, still runs it.
    Running(i32),
    /// It ended (its exit record says how), or its supervisor died.
    Ended,
}

/// Looks at an attempt's files; claims it as abandoned if no supervisor has.
pub fn examine(layout: &Layout, key: &AttemptKey) -> Found {
    let dir = layout.attempt_dir(key);
    let claim = match supervisor::read_claim(&dir) {
        Some(claim) => Some(claim),
        None => {
            let abandon = Claim { pid: 0, started: 0 };
            match supervisor::claim_attempt(&dir, abandon) {
                Ok(true) => None,
                // A supervisor claimed it between our read and our claim.
                _ => supervisor::read_claim(&dir),
            }
        }
    };
    match claim {
        None | Some(Claim { pid: 0, .. }) => Found::Unclaimed,
        Some(claim) => {
            if supervisor::read_exit(&dir).is_none() && is_same_process(claim.pid, claim.started) {
                Found::Running(claim.pid)
            } else {
                Found::Ended
            }
        }
    }
}

/// An attempt no supervisor ran: forget it, and the replica starts afresh.
pub fn abandon(db: &Connection, key: &AttemptKey) -> Result<()> {
    let tx = db.transaction()?;
    store::abandon_attempt(&tx, key)?;
    tx.commit()
}
