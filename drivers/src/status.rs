//! What a printer says about itself, in one small vocabulary for every language.
//!
//! Each language's `parse_status` maps its own reply onto [`DeviceStatus`]: a set
//! of [`Condition`]s a user acts on, the printer's own words in `detail`, and the
//! raw reply. The scheduler, not the driver, decides what a condition means for a
//! job (LPrint's habit of raising "media needed" only while a job is active).

use std::fmt;

/// Something about the printer that stops or may stop printing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Condition {
    /// Out of labels or paper.
    MediaOut,
    /// Out of thermal-transfer ribbon.
    RibbonOut,
    /// Print head or cover open.
    HeadOpen,
    /// Paused by the operator or a command.
    Paused,
    /// Paper or label jam (including a feed error).
    Jam,
    /// Cutter fault.
    Cutter,
    /// Print head too hot (or cooling down).
    Overheat,
    /// The printer's receive buffer is full.
    BufferFull,
    /// Wrong or unknown media loaded.
    WrongMedia,
    /// Not connected, switched off, or not answering.
    Offline,
    /// Any other fault; `detail` says what.
    Other,
}

impl Condition {
    /// Every condition, in a fixed order.
    pub const ALL: [Condition; 11] = [
        Condition::MediaOut,
        Condition::RibbonOut,
        Condition::HeadOpen,
        Condition::Paused,
        Condition::Jam,
        Condition::Cutter,
        Condition::Overheat,
        Condition::BufferFull,
        Condition::WrongMedia,
        Condition::Offline,
        Condition::Other,
    ];

    /// A stable `snake_case` name for logs, JSON and events.
    pub const fn name(self) -> &'static str {
        match self {
            Condition::MediaOut => "media_out",
            Condition::RibbonOut => "ribbon_out",
            Condition::HeadOpen => "head_open",
            Condition::Paused => "paused",
            Condition::Jam => "jam",
            Condition::Cutter => "cutter",
            Condition::Overheat => "overheat",
            Condition::BufferFull => "buffer_full",
            Condition::WrongMedia => "wrong_media",
            Condition::Offline => "offline",
            Condition::Other => "other",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of [`Condition`]s.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Conditions(u16);

impl Conditions {
    /// No conditions: nothing known to be wrong.
    pub const NONE: Conditions = Conditions(0);

    /// Adds a condition.
    pub fn insert(&mut self, condition: Condition) {
        self.0 |= condition.bit();
    }

    /// The set with `condition` added.
    pub fn with(mut self, condition: Condition) -> Conditions {
        self.insert(condition);
        self
    }

    /// Whether `condition` is in the set.
    pub fn contains(self, condition: Condition) -> bool {
        self.0 & condition.bit() != 0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The conditions in the set, in [`Condition::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Condition> {
        Condition::ALL
            .into_iter()
            .filter(move |c| self.contains(*c))
    }
}

impl FromIterator<Condition> for Conditions {
    fn from_iter<I: IntoIterator<Item = Condition>>(iter: I) -> Conditions {
        let mut set = Conditions::NONE;
        for c in iter {
            set.insert(c);
        }
        set
    }
}

impl fmt::Debug for Conditions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// The printer's state as its last status reply told it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceStatus {
    /// What is wrong; empty means ready as far as the reply says.
    pub conditions: Conditions,
    /// The printer's own words for anything worth showing (error names, model,
    /// media), human-readable, lowercase.
    pub detail: String,
    /// Labels the printer still has to print from the current batch, where the
    /// language reports it (ZPL `~HS`).
    pub labels_remaining: Option<u32>,
    /// Whether the printer is printing right now, where the language reports it.
    pub busy: Option<bool>,
    /// The reply as received.
    pub raw: Vec<u8>,
}

impl DeviceStatus {
    /// Whether nothing is wrong.
    pub fn is_ready(&self) -> bool {
        self.conditions.is_empty()
    }
}

/// A status reply that could not be understood.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StatusParseError {
    /// Fewer bytes than the reply needs (maybe more are on the way).
    #[error("status reply is {found} bytes; expected {expected} (it may be incomplete)")]
    Short {
        /// Bytes received.
        found: usize,
        /// Bytes the reply needs.
        expected: usize,
    },
    /// Bytes that do not have the reply's shape.
    #[error("status reply is malformed: {reason}")]
    Malformed {
        /// What was wrong.
        reason: String,
    },
}
