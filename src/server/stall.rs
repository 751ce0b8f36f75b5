//! Which clients stopped reading their replies. Pure (the caller passes the time).
//!
//! A reply whose send times out marks its peer stalled for a cool-down period; the
//! peer's replies are dropped, without trying, until it ends. So one client that never
//! reads costs the others at most one send timeout per cool-down, and its warning is
//! logged once per episode (the caller logs when [`StallTracker::mark`] says so, and a
//! summary when [`Check::Resumed`] comes back).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Expired entries are purged when the map grows past this many peers.
const PURGE_ABOVE: usize = 1024;

/// What to do with a reply to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not stalled: send.
    Clear,
    /// Stalled: drop the reply (counted).
    Stalled,
    /// The cool-down has ended: send again; `dropped` replies were dropped meanwhile.
    Resumed {
        /// Replies dropped during the cool-down.
        dropped: u64,
    },
}

/// One stalled peer.
#[derive(Clone, Copy, Debug)]
struct Stall {
    /// Replies are dropped until then.
    until: Instant,
    /// Replies dropped so far in this episode.
    dropped: u64,
}

/// Stalled peers by routing identity.
#[derive(Debug)]
pub(crate) struct StallTracker {
    /// How long a peer stays stalled after a send timed out.
    cool_down: Duration,
    /// The stalled peers.
    peers: HashMap<Bytes, Stall>,
}

impl StallTracker {
    /// An empty tracker.
    pub(crate) fn new(cool_down: Duration) -> StallTracker {
        StallTracker {
            cool_down,
            peers: HashMap::new(),
        }
    }

    /// Whether a reply to `peer` should be sent now (counts a drop when not).
    pub(crate) fn check(&mut self, peer: &[u8], now: Instant) -> Check {
        match self.peers.get_mut(peer) {
            None => Check::Clear,
            Some(stall) if now < stall.until => {
                stall.dropped += 1;
                Check::Stalled
            }
            Some(stall) => {
                let dropped = stall.dropped;
                self.peers.remove(peer);
                Check::Resumed { dropped }
            }
        }
    }

    /// A send to `peer` timed out. Returns true when this starts a new episode
    /// (log it); false when the peer was already stalled (the cool-down restarts).
    pub(crate) fn mark(&mut self, peer: Bytes, now: Instant) -> bool {
        if self.peers.len() > PURGE_ABOVE {
            self.peers.retain(|_, s| now < s.until);
        }
        let until = now + self.cool_down;
        match self.peers.get_mut(&peer) {
            Some(stall) if now < stall.until => {
                stall.until = until;
                false
            }
            _ => {
                self.peers.insert(peer, Stall { until, dropped: 0 });
                true
            }
        }
    }

    /// Peers currently tracked (stalled or expired but not yet checked).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_drops_until_the_cool_down_ends() {
        let t0 = Instant::now();
        let mut t = StallTracker::new(Duration::from_secs(5));
        let a = Bytes::from_static(b"a");
        assert_eq!(t.check(&a, t0), Check::Clear);
        assert!(t.mark(a.clone(), t0));
        // Other peers are unaffected.
        assert_eq!(t.check(b"b", t0), Check::Clear);
        for i in 1..=3 {
            assert_eq!(t.check(&a, t0 + Duration::from_secs(i)), Check::Stalled);
        }
        // A second timeout within the episode is not a new episode.
        assert!(!t.mark(a.clone(), t0 + Duration::from_secs(4)));
        assert_eq!(t.check(&a, t0 + Duration::from_secs(8)), Check::Stalled);
        assert_eq!(
            t.check(&a, t0 + Duration::from_secs(9)),
            Check::Resumed { dropped: 4 }
        );
        assert_eq!(t.check(&a, t0 + Duration::from_secs(9)), Check::Clear);
        // A new timeout after resuming is a new episode (logged again).
        assert!(t.mark(a, t0 + Duration::from_secs(10)));
    }

    #[test]
    fn expired_entries_are_purged() {
        let t0 = Instant::now();
        let mut t = StallTracker::new(Duration::from_secs(1));
        for i in 0..=PURGE_ABOVE {
            t.mark(Bytes::from(i.to_string()), t0);
        }
        assert_eq!(t.len(), PURGE_ABOVE + 1);
        t.mark(Bytes::from_static(b"late"), t0 + Duration::from_secs(2));
        assert_eq!(t.len(), 1);
    }
}
