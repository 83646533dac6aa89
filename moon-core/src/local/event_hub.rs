//! Hands each new event to the watchers of its job, and to no one else, so
//! that the agent's work per event does not grow with the number of jobs or
//! watchers: the agent reads the events committed since its last pass once,
//! and each goes to the few connections that follow its job.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::backend::Event;

/// Subscriptions by job id.
#[derive(Default)]
pub struct EventHub {
    subscribers: Mutex<HashMap<i64, Vec<mpsc::UnboundedSender<Event>>>>,
}

impl EventHub {
    /// Every event of `job` published from now on. A watcher subscribes
    /// before it reads what is stored, so no event falls between the two
    /// (one may come both ways: it compares sequence numbers).
    pub fn subscribe(&self, job: i64) -> mpsc::UnboundedReceiver<Event> {
        let (sender, receiver) = mpsc::unbounded_channel();
        self.lock().entry(job).or_default().push(sender);
        receiver
    }

    /// Hands out events (job id, event), in order. A job's subscriptions end
    /// after its terminal event; those whose watcher left are dropped.
    pub fn publish(&self, events: impl IntoIterator<Item = (i64, Event)>) {
        let mut subscribers = self.lock();
        for (job, event) in events {
            let terminal = event.phase.is_terminal();
            if let Some(list) = subscribers.get_mut(&job) {
                list.retain(|sender| sender.send(event.clone()).is_ok());
                if terminal || list.is_empty() {
                    subscribers.remove(&job);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Vec<mpsc::UnboundedSender<Event>>>> {
        self.subscribers
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Phase;

    fn event(seq: u64, phase: Phase) -> Event {
        Event {
            seq,
            time_ms: 0,
            tenant: "t".into(),
            job: "j".into(),
            kind: "k".into(),
            phase,
            replica: None,
            message: String::new(),
        }
    }

    #[test]
    fn events_reach_only_the_watchers_of_their_job() {
        let hub = EventHub::default();
        let mut first = hub.subscribe(1);
        let mut second = hub.subscribe(2);
        hub.publish([
            (1, event(10, Phase::Running)),
            (2, event(11, Phase::Running)),
        ]);
        assert_eq!(first.try_recv().expect("one event").seq, 10);
        assert!(first.try_recv().is_err(), "nothing of job 2");
        assert_eq!(second.try_recv().expect("one event").seq, 11);
    }

    #[test]
    fn a_terminal_event_ends_the_subscription() {
        let hub = EventHub::default();
        let mut watcher = hub.subscribe(1);
        hub.publish([
            (1, event(1, Phase::Succeeded)),
            (1, event(2, Phase::Running)),
        ]);
        assert_eq!(watcher.try_recv().expect("terminal").seq, 1);
        assert!(matches!(
            watcher.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }
}
