//! Code 128: data characters → symbol values → module widths.
//!
//! Spec: ISO/IEC 15417:2007 *Information technology — Automatic identification and data
//! capture techniques — Code 128 bar code symbology specification*. Used here for the
//! 24-digit IM tray barcode ([`crate::encode::tray`]) and the IM container barcode
//! ([`crate::encode::container`]). Facts with sources: `../shared/reference/imb-facts.md`
//! §11 (symbol characters, special values, check character, widths, quiet zone).
//!
//! What is covered:
//!
//! - the 107 symbol characters (values 0–102, Start A/B/C, Stop) as bar/space widths,
//!   [`PATTERNS`];
//! - code sets A, B and C, Shift, and FNC1 (value 102 in every set), so both plain
//!   Code 128 and GS1-128 (FNC1 right after the start character) can be built;
//! - the **shortest** encoding of any mix of ASCII 0–127 and FNC1: a dynamic programme
//!   over (position, active code set) that considers every start set, every code-set
//!   switch, every Shift and every set C digit pair, so the symbol has the fewest
//!   symbol characters possible ([`encode`]); the integration tests check this against
//!   an exhaustive search over symbol-value sequences;
//! - a single code set forced throughout, with no switch and no Shift
//!   ([`CodeSetMode::Only`]), which the container barcode needs;
//! - the modulo-103 check character and the 13-module stop character.
//!
//! Not covered: FNC2, FNC3 and FNC4 (so no ISO 8859-1 characters above 127), reading
//! symbols back (a decoder lives in the integration tests only), and anything physical:
//! the output is a list of module widths; [`crate::geometry`] and [`crate::render`]
//! turn modules into dots.

use std::fmt;

/// Bar/space widths, in modules, of every Code 128 symbol character, indexed by symbol
/// value: 0–102 data and special values, 103 Start A, 104 Start B, 105 Start C and
/// 106 Stop.
///
/// Source: ISO/IEC 15417:2007 Table 1 (symbol character encodation). Each entry starts
/// with a bar and alternates bar, space, …; values 0–105 have three bars and three
/// spaces over 11 modules, the stop character four bars and three spaces over 13
/// modules (`imb-facts.md` §11). The unit tests check the table's structure (widths
/// 1–4, 11 modules, an even number of bar modules, no duplicates) and the integration
/// tests compare whole symbols with module strings produced by zint 2.11.1.
pub const PATTERNS: [&[u8]; 107] = [
    b"212222", b"222122", b"222221", b"121223", b"121322", // 0–4
    b"131222", b"122213", b"122312", b"132212", b"221213", // 5–9
    b"221312", b"231212", b"112232", b"122132", b"122231", // 10–14
    b"113222", b"123122", b"123221", b"223211", b"221132", // 15–19
    b"221231", b"213212", b"223112", b"312131", b"311222", // 20–24
    b"321122", b"321221", b"312212", b"322112", b"322211", // 25–29
    b"212123", b"212321", b"232121", b"111323", b"131123", // 30–34
    b"131321", b"112313", b"132113", b"132311", b"211313", // 35–39
    b"231113", b"231311", b"112133", b"112331", b"132131", // 40–44
    b"113123", b"113321", b"133121", b"313121", b"211331", // 45–49
    b"231131", b"213113", b"213311", b"213131", b"311123", // 50–54
    b"311321", b"331121", b"312113", b"312311", b"332111", // 55–59
    b"314111", b"221411", b"431111", b"111224", b"111422", // 60–64
    b"121124", b"121421", b"141122", b"141221", b"112214", // 65–69
    b"112412", b"122114", b"122411", b"142112", b"142211", // 70–74
    b"241211", b"221114", b"413111", b"241112", b"134111", // 75–79
    b"111242", b"121142", b"121241", b"114212", b"124112", // 80–84
    b"124211", b"411212", b"421112", b"421211", b"212141", // 85–89
    b"214121", b"412121", b"111143", b"111341", b"131141", // 90–94
    b"114113", b"114311", b"411113", b"411311", b"113141", // 95–99
    b"114131", b"311141", b"411131", b"211412", b"211214", // 100–104
    b"211232", b"2331112", // 105 Start C, 106 Stop
];

/// Symbol value of Start A (ISO/IEC 15417 Table 1).
pub const START_A: u8 = 103;
/// Symbol value of Start B.
pub const START_B: u8 = 104;
/// Symbol value of Start C.
pub const START_C: u8 = 105;
/// Symbol value of the stop character (pattern 2-3-3-1-1-1-2, 13 modules).
pub const STOP: u8 = 106;
/// Symbol value of FNC1, the same in code sets A, B and C.
pub const FNC1: u8 = 102;
/// Symbol value of Shift (in sets A and B: the next character is read in the other one).
pub const SHIFT: u8 = 98;

/// Modules in each start, data or check character.
pub const CHAR_MODULES: usize = 11;
/// Modules in the stop character.
pub const STOP_MODULES: usize = 13;
/// Minimum quiet zone left and right of the symbol, in modules (ISO/IEC 15417 §4.4.2,
/// `imb-facts.md` §11). Not part of [`Code128::modules`]; the layout adds it.
pub const QUIET_ZONE_MODULES: usize = 10;

/// Most input characters [`encode`] accepts.
///
/// ISO/IEC 15417 sets no maximum. 128 characters is far beyond any USPS use (24 for the
/// tray barcode, 22 for the container barcode) and beyond anything printable on a label:
/// even as 64 set C pairs the symbol is 739 modules, 7.4 in at a 10-mil module. The
/// bound keeps the work per symbol small and fixed, whatever a client sends.
pub const MAX_INPUT: usize = 128;

/// One input character: an ASCII character or the function character FNC1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code128Char {
    /// An ASCII character, 0–127. Larger values are rejected by [`encode`] as
    /// [`Code128Error::NonAscii`].
    Ascii(u8),
    /// Function 1 (value 102). First after the start character it marks GS1-128.
    Fnc1,
}

impl Code128Char {
    /// The characters of an ASCII string, in order.
    ///
    /// # Errors
    ///
    /// [`Code128Error::NonAscii`] with the 1-based position of the first character above
    /// 127.
    pub fn from_ascii_str(s: &str) -> Result<Vec<Code128Char>, Code128Error> {
        s.chars()
            .enumerate()
            .map(|(i, c)| match u8::try_from(c) {
                Ok(b) if b.is_ascii() => Ok(Code128Char::Ascii(b)),
                _ => Err(Code128Error::NonAscii {
                    position: i + 1,
                    found: c,
                }),
            })
            .collect()
    }

    /// Whether this is an ASCII digit `0`–`9`.
    pub const fn is_digit(self) -> bool {
        matches!(self, Code128Char::Ascii(b'0'..=b'9'))
    }
}

impl fmt::Display for Code128Char {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Code128Char::Fnc1 => f.write_str("FNC1"),
            Code128Char::Ascii(b @ 0x20..=0x7e) => write!(f, "'{}'", char::from(b)),
            Code128Char::Ascii(b) => write!(f, "U+{b:04X}"),
        }
    }
}

/// One of the three Code 128 code sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CodeSet {
    /// ASCII 0–95 (upper case, digits, punctuation and control characters), FNC1.
    A,
    /// ASCII 32–127 (upper and lower case, digits, punctuation, DEL), FNC1.
    B,
    /// Digit pairs 00–99, one symbol character each, and FNC1.
    C,
}

impl CodeSet {
    /// All three, in the order ties are broken when choosing a start set or a switch:
    /// B first (it holds the most printable characters), then C, then A.
    const PREFERENCE: [CodeSet; 3] = [CodeSet::B, CodeSet::C, CodeSet::A];

    /// The start character's symbol value.
    pub const fn start_value(self) -> u8 {
        match self {
            CodeSet::A => START_A,
            CodeSet::B => START_B,
            CodeSet::C => START_C,
        }
    }

    /// The value that switches to this set from either of the others
    /// (Code A = 101, Code B = 100, Code C = 99; ISO/IEC 15417 Table 1).
    const fn switch_value(self) -> u8 {
        match self {
            CodeSet::A => 101,
            CodeSet::B => 100,
            CodeSet::C => 99,
        }
    }

    /// What the set holds, for error messages.
    const fn holds(self) -> &'static str {
        match self {
            CodeSet::A => "ASCII 0-95 and FNC1",
            CodeSet::B => "ASCII 32-127 and FNC1",
            CodeSet::C => "digit pairs 00-99 and FNC1",
        }
    }

    const fn index(self) -> usize {
        match self {
            CodeSet::A => 0,
            CodeSet::B => 1,
            CodeSet::C => 2,
        }
    }
}

impl fmt::Display for CodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CodeSet::A => "A",
            CodeSet::B => "B",
            CodeSet::C => "C",
        })
    }
}

/// How [`encode_with`] chooses code sets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CodeSetMode {
    /// The fewest symbol characters, switching sets and using Shift wherever that saves
    /// a symbol character. On a tie the encoder stays in its set, and otherwise prefers
    /// B, then C, then A.
    #[default]
    Shortest,
    /// This one set from the start character to the end: no switch and no Shift, one
    /// symbol character per input character (per digit pair in set C).
    Only(CodeSet),
}

/// Why data cannot be encoded as Code 128.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Code128Error {
    /// No input characters.
    #[error("code 128 input is empty; give 1 to {MAX_INPUT} characters")]
    Empty,
    /// More than [`MAX_INPUT`] input characters.
    #[error("code 128 input has {found} characters; at most {MAX_INPUT} are allowed")]
    TooLong {
        /// How many characters were given.
        found: usize,
    },
    /// A character outside ASCII 0–127.
    #[error("code 128 character {position} is U+{:04X}, not ASCII; only ASCII 0-127 and FNC1 can be encoded", u32::from(*.found))]
    NonAscii {
        /// 1-based position in the input.
        position: usize,
        /// The character found.
        found: char,
    },
    /// A character the forced code set does not hold.
    #[error("code 128 character {position} ({found}) is not in code set {set}; set {set} holds {}", .set.holds())]
    NotInCodeSet {
        /// 1-based position in the input.
        position: usize,
        /// The character found.
        found: Code128Char,
        /// The forced set.
        set: CodeSet,
    },
    /// A digit in forced set C with no digit after it to pair with.
    #[error("code 128 character {position} is a digit with no digit after it; code set C encodes digits in pairs")]
    UnpairedDigit {
        /// 1-based position in the input.
        position: usize,
    },
}

/// An encoded Code 128 symbol: its symbol values and its module widths.
///
/// The values are kept for tests and debugging (as zint keeps them): start, data, check
/// and stop. The widths alternate bar, space, bar, …, starting and ending with a bar;
/// the quiet zones are not included.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Code128 {
    /// Start character value (103, 104 or 105).
    start: u8,
    /// Data symbol values, including switches, Shifts and FNC1, without start or check.
    data: Vec<u8>,
    /// Check character value, 0–102.
    check: u8,
    /// Module widths of every bar and space, start to stop.
    widths: Vec<u8>,
}

impl Code128 {
    /// Every symbol value in order: start, data, check, stop.
    pub fn values(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.data.len() + 3);
        all.push(self.start);
        all.extend_from_slice(&self.data);
        all.push(self.check);
        all.push(STOP);
        all
    }

    /// The start character's value: 103 (A), 104 (B) or 105 (C).
    pub fn start_value(&self) -> u8 {
        self.start
    }

    /// The data symbol values between the start and the check character.
    pub fn data_values(&self) -> &[u8] {
        &self.data
    }

    /// The check character's value: (start + Σ position × value) mod 103.
    pub fn check_value(&self) -> u8 {
        self.check
    }

    /// Bar and space widths in modules, alternating and starting with a bar.
    pub fn widths(&self) -> &[u8] {
        &self.widths
    }

    /// Total width in modules, quiet zones excluded: 11 per start, data and check
    /// character, plus 13 for the stop.
    pub fn modules(&self) -> usize {
        self.widths.iter().map(|&w| usize::from(w)).sum()
    }

    /// The bars as `(first module, width in modules)`, left to right.
    pub fn bars(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.widths
            .iter()
            .scan(0usize, |at, &w| {
                let start = *at;
                *at += usize::from(w);
                Some((start, usize::from(w)))
            })
            .step_by(2)
    }

    /// One character per module: `1` for bar, `0` for space.
    pub fn module_string(&self) -> String {
        let mut s = String::with_capacity(self.modules());
        for (i, &w) in self.widths.iter().enumerate() {
            let c = if i % 2 == 0 { '1' } else { '0' };
            s.extend(std::iter::repeat_n(c, usize::from(w)));
        }
        s
    }
}

/// Encode with the fewest symbol characters ([`CodeSetMode::Shortest`]).
///
/// # Errors
///
/// [`Code128Error::Empty`], [`Code128Error::TooLong`] or [`Code128Error::NonAscii`].
pub fn encode(data: &[Code128Char]) -> Result<Code128, Code128Error> {
    encode_with(data, CodeSetMode::Shortest)
}

/// Encode an ASCII string (no FNC1) with the fewest symbol characters.
///
/// # Errors
///
/// As [`encode`]; positions count characters, from 1.
pub fn encode_str(s: &str) -> Result<Code128, Code128Error> {
    // Bound the work before converting: a huge string is refused without a copy.
    if s.chars().nth(MAX_INPUT).is_some() {
        return Err(Code128Error::TooLong {
            found: s.chars().count(),
        });
    }
    encode(&Code128Char::from_ascii_str(s)?)
}

/// Encode with the given code-set choice.
///
/// # Errors
///
/// [`Code128Error::Empty`], [`Code128Error::TooLong`] or [`Code128Error::NonAscii`] for
/// any mode; [`Code128Error::NotInCodeSet`] or [`Code128Error::UnpairedDigit`] when a
/// forced set cannot hold the data.
pub fn encode_with(data: &[Code128Char], mode: CodeSetMode) -> Result<Code128, Code128Error> {
    validate(data)?;
    let (set, values) = match mode {
        CodeSetMode::Shortest => shortest_values(data),
        CodeSetMode::Only(set) => (set, forced_values(data, set)?),
    };
    Ok(assemble(set, values))
}

/// Check length and character range before any encoding work.
fn validate(data: &[Code128Char]) -> Result<(), Code128Error> {
    if data.is_empty() {
        return Err(Code128Error::Empty);
    }
    if data.len() > MAX_INPUT {
        return Err(Code128Error::TooLong { found: data.len() });
    }
    match data
        .iter()
        .position(|c| matches!(c, Code128Char::Ascii(b) if !b.is_ascii()))
    {
        Some(i) => Err(Code128Error::NonAscii {
            position: i + 1,
            found: match data[i] {
                Code128Char::Ascii(b) => char::from(b),
                Code128Char::Fnc1 => '\u{0}',
            },
        }),
        None => Ok(()),
    }
}

/// Whether `set` holds `c` as one symbol character (set C: only FNC1; digits need a pair).
fn holds(set: CodeSet, c: Code128Char) -> bool {
    match (set, c) {
        (_, Code128Char::Fnc1) => true,
        (CodeSet::A, Code128Char::Ascii(b)) => b < 96,
        (CodeSet::B, Code128Char::Ascii(b)) => (32..128).contains(&b),
        (CodeSet::C, Code128Char::Ascii(_)) => false,
    }
}

/// The value of `c` in set A or B (ISO/IEC 15417 Table 1): in A, ASCII 32–95 are
/// values 0–63 and ASCII 0–31 are 64–95; in B, ASCII 32–127 are 0–95.
/// Callers pass only characters the set holds.
fn char_value(set: CodeSet, c: Code128Char) -> u8 {
    match (set, c) {
        (_, Code128Char::Fnc1) => FNC1,
        (CodeSet::A, Code128Char::Ascii(b)) if b < 32 => b + 64,
        (_, Code128Char::Ascii(b)) => b.saturating_sub(32),
    }
}

/// The set C value of two digits, if both are digits.
fn pair_value(first: Code128Char, second: Code128Char) -> Option<u8> {
    match (first, second) {
        (Code128Char::Ascii(a @ b'0'..=b'9'), Code128Char::Ascii(b @ b'0'..=b'9')) => {
            Some((a - b'0') * 10 + (b - b'0'))
        }
        _ => None,
    }
}

/// The other of sets A and B, the one Shift reaches.
fn shifted(set: CodeSet) -> CodeSet {
    if set == CodeSet::A {
        CodeSet::B
    } else {
        CodeSet::A
    }
}

/// One encoding step that stays in the active set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Move {
    /// One character in the active set: one symbol character.
    Single,
    /// Shift, then one character in the other of A/B: two symbol characters.
    Shift,
    /// Two digits in set C: one symbol character.
    Pair,
}

impl Move {
    const fn symbols(self) -> u32 {
        match self {
            Move::Shift => 2,
            Move::Single | Move::Pair => 1,
        }
    }

    const fn consumed(self) -> usize {
        match self {
            Move::Pair => 2,
            Move::Single | Move::Shift => 1,
        }
    }
}

/// The best step from position `i` in `set`, optionally after switching to `set`.
#[derive(Clone, Copy, Debug)]
struct Choice {
    /// Symbol characters from here to the end of the data.
    cost: u32,
    /// Switch to this set first (one more symbol character).
    switch: Option<CodeSet>,
    /// Then this step in the (possibly new) set.
    step: Move,
}

/// The step that stays in `set` at position `i`, with the cost of finishing from there.
/// Sets A and B always have one (a character outside the set takes a Shift); set C has
/// one only for FNC1 or a digit pair. `rest` holds the best costs from `i + 1` on.
fn stay(data: &[Code128Char], i: usize, set: CodeSet, rest: &[[u32; 3]]) -> Option<(u32, Move)> {
    let c = *data.get(i)?;
    let step = match set {
        CodeSet::C if c == Code128Char::Fnc1 => Move::Single,
        CodeSet::C => {
            pair_value(c, *data.get(i + 1)?)?;
            Move::Pair
        }
        _ if holds(set, c) => Move::Single,
        _ => Move::Shift,
    };
    let after = rest.get(step.consumed() - 1)?[set.index()];
    Some((step.symbols() + after, step))
}

/// The cheapest way on from position `i` with `set` active: stay, or switch to another
/// set first. A second switch in a row never helps (every set reaches every other in one).
fn choose(data: &[Code128Char], i: usize, set: CodeSet, rest: &[[u32; 3]]) -> Option<Choice> {
    let stay_here = stay(data, i, set, rest).map(|(cost, step)| Choice {
        cost,
        switch: None,
        step,
    });
    let switches = CodeSet::PREFERENCE
        .into_iter()
        .filter(|&other| other != set)
        .filter_map(|other| {
            stay(data, i, other, rest).map(|(cost, step)| Choice {
                cost: cost + 1,
                switch: Some(other),
                step,
            })
        });
    // `min_by_key` keeps the first of equal costs: staying, then the preference order.
    stay_here.into_iter().chain(switches).min_by_key(|c| c.cost)
}

/// The fewest-symbol encoding: the start set and the data values.
///
/// `best[i][s]` is the fewest symbol characters that encode `data[i..]` when set `s` is
/// active before `data[i]`; it is filled from the end. Every symbol that decodes to
/// `data` is a sequence of stays (one character, Shift + character, or a digit pair)
/// and switches, so the minimum over these is the minimum over all symbols.
fn shortest_values(data: &[Code128Char]) -> (CodeSet, Vec<u8>) {
    let n = data.len();
    let mut best = vec![[0u32; 3]; n + 1];
    let mut choices: Vec<[Option<Choice>; 3]> = vec![[None; 3]; n];
    for i in (0..n).rev() {
        for set in [CodeSet::A, CodeSet::B, CodeSet::C] {
            let choice = choose(data, i, set, &best[i + 1..]);
            best[i][set.index()] = choice.map_or(u32::MAX / 4, |c| c.cost);
            choices[i][set.index()] = choice;
        }
    }
    let start = CodeSet::PREFERENCE
        .into_iter()
        .min_by_key(|s| best.first().map_or(0, |b| b[s.index()]))
        .unwrap_or(CodeSet::B);
    (start, replay(data, start, &choices))
}

/// Walk the chosen steps from the start set and emit their values.
fn replay(data: &[Code128Char], start: CodeSet, choices: &[[Option<Choice>; 3]]) -> Vec<u8> {
    let mut values = Vec::with_capacity(data.len() + 4);
    let (mut i, mut set) = (0, start);
    while let Some(Some(choice)) = choices.get(i).map(|c| c[set.index()]) {
        if let Some(next) = choice.switch {
            values.push(next.switch_value());
            set = next;
        }
        emit(data, i, set, choice.step, &mut values);
        i += choice.step.consumed();
    }
    values
}

/// Push the values of one step taken at position `i` in `set`.
fn emit(data: &[Code128Char], i: usize, set: CodeSet, step: Move, values: &mut Vec<u8>) {
    let Some(&c) = data.get(i) else { return };
    match step {
        Move::Single => values.push(char_value(set, c)),
        Move::Shift => values.extend([SHIFT, char_value(shifted(set), c)]),
        Move::Pair => {
            if let Some(v) = data.get(i + 1).and_then(|&d| pair_value(c, d)) {
                values.push(v);
            }
        }
    }
}

/// The data values with one set throughout, or the first character it cannot hold.
fn forced_values(data: &[Code128Char], set: CodeSet) -> Result<Vec<u8>, Code128Error> {
    let mut values = Vec::with_capacity(data.len());
    let mut i = 0;
    while let Some(&c) = data.get(i) {
        if set == CodeSet::C && c.is_digit() {
            let pair = data.get(i + 1).and_then(|&d| pair_value(c, d));
            values.push(pair.ok_or(Code128Error::UnpairedDigit { position: i + 1 })?);
            i += 2;
        } else if holds(set, c) {
            values.push(char_value(set, c));
            i += 1;
        } else {
            return Err(Code128Error::NotInCodeSet {
                position: i + 1,
                found: c,
                set,
            });
        }
    }
    Ok(values)
}

/// The check character: (start + Σ position × value) mod 103, positions from 1.
fn check_value(start: u8, data: &[u8]) -> u8 {
    let sum = data
        .iter()
        .zip(1u32..)
        .fold(u32::from(start), |acc, (&v, pos)| acc + pos * u32::from(v));
    // The remainder is below 103, so it fits a u8.
    (sum % 103) as u8
}

/// Add the check character and the stop, and expand every value into module widths.
fn assemble(set: CodeSet, data: Vec<u8>) -> Code128 {
    let start = set.start_value();
    let check = check_value(start, &data);
    let widths = std::iter::once(start)
        .chain(data.iter().copied())
        .chain([check, STOP])
        .filter_map(|v| PATTERNS.get(usize::from(v)))
        .flat_map(|p| p.iter().map(|d| d - b'0'))
        .collect();
    Code128 {
        start,
        data,
        check,
        widths,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Code128Char::{Ascii, Fnc1};

    fn chars(s: &str) -> Vec<Code128Char> {
        s.bytes().map(Ascii).collect()
    }

    #[test]
    fn table_structure_follows_iso_15417() {
        let mut seen = std::collections::HashSet::new();
        for (value, p) in PATTERNS.iter().enumerate() {
            let w: Vec<u32> = p.iter().map(|d| u32::from(d - b'0')).collect();
            assert!(
                w.iter().all(|&x| (1..=4).contains(&x)),
                "value {value}: {w:?}"
            );
            let bars: u32 = w.iter().step_by(2).sum();
            let total: u32 = w.iter().sum();
            if value == usize::from(STOP) {
                assert_eq!((w.len(), total), (7, 13));
            } else {
                assert_eq!((w.len(), total), (6, 11), "value {value}");
                // ISO/IEC 15417 §4.1.3: bars of a symbol character cover an even number
                // of modules (the parity a reader checks).
                assert_eq!(bars % 2, 0, "value {value}: odd bar modules");
            }
            assert!(seen.insert(p), "value {value} duplicates another pattern");
        }
        assert_eq!(PATTERNS[usize::from(STOP)], b"2331112");
    }

    #[test]
    fn shortest_encodings() {
        // (input, start, data values, check); each derived by hand from Table 1.
        let cases: &[(&[Code128Char], u8, &[u8], u8)] = &[
            // 0: "Wikipedia" in set B: W=55 i=73 k=75 p=80 e=69 d=68 a=65;
            //    104 + 55 + 2·73 + 3·75 + 4·73 + 5·80 + 6·69 + 7·68 + 8·73 + 9·65 = 3281
            //    = 31·103 + 88.
            (
                &chars("Wikipedia"),
                104,
                &[55, 73, 75, 73, 80, 69, 68, 73, 65],
                88,
            ),
            // 1: four digits: one set C pair each; 105 + 12 + 2·34 = 185 = 103 + 82.
            (&chars("1234"), 105, &[12, 34], 82),
            // 2: odd digit count: all B is 5; "12 34" in C then Code B, '5' is 4; '1' in B
            //    then Code C, "23 45" is 4 too. The tie goes to start B ('1' = 49 - 32).
            (&chars("12345"), 104, &[17, 99, 23, 45], 53),
            //    104 + 17 + 2·99 + 3·23 + 4·45 = 568 = 5·103 + 53.,
            // 3: one control character among lower case: Shift (98) in set B, 'a'=65.
            (&chars("a\tb"), 104, &[65, 98, 73, 66], 24),
            //    104 + 65 + 2·98 + 3·73 + 4·66 = 848 = 8·103 + 24.,
            // 4: three control characters in a row: Code A (101) + 3 costs 4, three Shifts
            //    6. Back in B needs Code B + 'b' or, equally, Shift + 'b': staying wins.
            (&chars("a\t\t\tb"), 104, &[65, 101, 73, 73, 73, 98, 66], 31),
            //    104 + 65 + 2·101 + 3·73 + 4·73 + 5·73 + 6·98 + 7·66 = 2297 = 22·103 + 31.,
            // 5: control characters only: set A, TAB = 9 + 64 = 73; 103 + 73 = 176 = 103 + 73.
            (&chars("\t"), 103, &[73], 73),
            // 6: GS1-128 "(420)12345": Start C, FNC1, 42 01 23 45;
            //    105 + 102 + 2·42 + 3·1 + 4·23 + 5·45 = 611 = 5·103 + 96.
            (
                &[&[Fnc1][..], &chars("42012345")].concat(),
                105,
                &[102, 42, 1, 23, 45],
                96,
            ),
            // 7: FNC1 alone, start B by preference; 104 + 102 = 206 = 2·103 + 0.
            (&[Fnc1], 104, &[102], 0),
            // 8: DEL (127) is only in set B: value 95; 104 + 95 = 199 = 103 + 96.
            (&chars("\x7f"), 104, &[95], 96),
            // 9: NUL is only in set A: value 64; 103 + 64 = 167 = 103 + 64.
            (&chars("\0"), 103, &[64], 64),
        ];
        for (i, (input, start, data, check)) in cases.iter().enumerate() {
            let s = encode(input).unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(
                (s.start_value(), s.data_values(), s.check_value()),
                (*start, *data, *check),
                "case {i}"
            );
            assert_eq!(s.modules(), 11 * (data.len() + 2) + 13, "case {i}");
        }
    }

    #[test]
    fn forced_sets() {
        let cases: &[(&str, CodeSet, &[u8])] = &[
            // 0: digits one per symbol in set B: '9' = 57 - 32 = 25.
            ("99M", CodeSet::B, &[25, 25, 45]),
            // 1: set A upper case and control.
            ("A\r", CodeSet::A, &[33, 77]),
            // 2: set C pairs.
            ("0099", CodeSet::C, &[0, 99]),
        ];
        for (i, (input, set, data)) in cases.iter().enumerate() {
            let s = encode_with(&chars(input), CodeSetMode::Only(*set))
                .unwrap_or_else(|e| panic!("case {i}: {e}"));
            assert_eq!(s.start_value(), set.start_value(), "case {i}");
            assert_eq!(s.data_values(), *data, "case {i}");
        }
    }

    #[test]
    fn errors() {
        let long = vec![Ascii(b'1'); MAX_INPUT + 1];
        let cases: &[(&[Code128Char], CodeSetMode, &str)] = &[
            // 0
            (&[], CodeSetMode::Shortest, "code 128 input is empty; give 1 to 128 characters"),
            // 1
            (&long, CodeSetMode::Shortest, "code 128 input has 129 characters; at most 128 are allowed"),
            // 2
            (
                &[Ascii(b'a'), Ascii(200)],
                CodeSetMode::Shortest,
                "code 128 character 2 is U+00C8, not ASCII; only ASCII 0-127 and FNC1 can be encoded",
            ),
            // 3: range checked before the forced set
            (&[Ascii(255)], CodeSetMode::Only(CodeSet::C), "code 128 character 1 is U+00FF, not ASCII; only ASCII 0-127 and FNC1 can be encoded"),
            // 4
            (
                &chars("AbC"),
                CodeSetMode::Only(CodeSet::A),
                "code 128 character 2 ('b') is not in code set A; set A holds ASCII 0-95 and FNC1",
            ),
            // 5
            (
                &chars("A\nB"),
                CodeSetMode::Only(CodeSet::B),
                "code 128 character 2 (U+000A) is not in code set B; set B holds ASCII 32-127 and FNC1",
            ),
            // 6
            (
                &chars("12A"),
                CodeSetMode::Only(CodeSet::C),
                "code 128 character 3 ('A') is not in code set C; set C holds digit pairs 00-99 and FNC1",
            ),
            // 7
            (
                &[Ascii(b'1'), Fnc1, Ascii(b'2'), Ascii(b'3')],
                CodeSetMode::Only(CodeSet::C),
                "code 128 character 1 is a digit with no digit after it; code set C encodes digits in pairs",
            ),
            // 8
            (&chars("123"), CodeSetMode::Only(CodeSet::C), "code 128 character 3 is a digit with no digit after it; code set C encodes digits in pairs"),
        ];
        for (i, (input, mode, message)) in cases.iter().enumerate() {
            match encode_with(input, *mode) {
                Err(e) => assert_eq!(e.to_string(), *message, "case {i}"),
                Ok(s) => panic!("case {i}: encoded as {:?}", s.values()),
            }
        }
    }

    #[test]
    fn encode_str_reports_character_positions() {
        let long = "\u{e9}".repeat(200);
        assert_eq!(
            encode_str(&long).err().map(|e| e.to_string()).as_deref(),
            Some("code 128 input has 200 characters; at most 128 are allowed")
        );
        let e = encode_str("ab\u{e9}").err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("code 128 character 3 is U+00E9, not ASCII; only ASCII 0-127 and FNC1 can be encoded")
        );
        assert_eq!(
            encode_str("ab").map(|s| s.data_values().to_vec()),
            Ok(vec![65, 66])
        );
    }

    #[test]
    fn every_byte_in_every_mode_encodes_or_errs() {
        let modes = [
            CodeSetMode::Shortest,
            CodeSetMode::Only(CodeSet::A),
            CodeSetMode::Only(CodeSet::B),
            CodeSetMode::Only(CodeSet::C),
        ];
        for b in 0..=255u8 {
            for mode in modes {
                for input in [vec![Ascii(b)], vec![Fnc1, Ascii(b), Ascii(b)]] {
                    if let Ok(s) = encode_with(&input, mode) {
                        assert_eq!(s.modules(), 11 * (s.data_values().len() + 2) + 13);
                        assert!(b < 128);
                    }
                }
            }
        }
    }

    #[test]
    fn module_helpers_agree() {
        let s = encode_str("12").unwrap_or_else(|e| panic!("{e}"));
        // Start C 211232, 12 = 112232, check (105 + 12) % 103 = 14 = 122231, stop 2331112.
        assert_eq!(s.values(), vec![105, 12, 14, 106]);
        let expected = "11010011100".to_string() + "10110011100" + "10011001110" + "1100011101011";
        assert_eq!(s.module_string(), expected);
        assert_eq!(s.modules(), 46);
        let bars: Vec<(usize, usize)> = s.bars().collect();
        assert_eq!(bars[..3], [(0, 2), (3, 1), (6, 3)]);
        let from_bars: String = {
            let mut m = vec!['0'; s.modules()];
            for (at, w) in s.bars() {
                m[at..at + w].iter_mut().for_each(|c| *c = '1');
            }
            m.into_iter().collect()
        };
        assert_eq!(from_bars, s.module_string());
    }
}
