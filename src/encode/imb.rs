//! The USPS Intelligent Mail barcode (IMb), encode and decode.
//!
//! Spec: USPS-B-3200 *Intelligent Mail Barcode 4-State*, Revision H (2015-04-20):
//! §2.1.3 (data fields), §2.2.1–§2.2.6 (the six encoding steps), Appendix C (character
//! table generation) and Appendix D Table IV (bar-to-character map). Facts, checked
//! values and sources: `../shared/reference/imb-facts.md` §1–§5.
//!
//! The encoder follows the spec's steps, one function each:
//! `fields_to_binary` (step 1), `crc11` (step 2), `binary_to_codewords` (step 3),
//! `insert_orientation_and_fcs` (step 4), `codewords_to_characters` (step 5) and
//! `characters_to_bar_pairs` (step 6). [`encode`] only chains them and keeps every
//! intermediate value in [`ImbSteps`]. The 102-bit value fits a `u128`; the tables are
//! built at compile time; nothing allocates.
//!
//! The decoder runs the steps backwards. Every 13-bit character must be a member of
//! the 5-of-13 or 2-of-13 table or their complements, the orientation codeword must
//! be even, and the recovered frame check sequence must match the data: a damaged
//! symbol is an error, never a different number.
//!
//! Not covered here: physical dimensions (see [`crate::geometry`]) and placement on
//! the mail piece (the layout stage).

use std::fmt;

/// One of the four IMb bar states (B3200 §2.1.1).
///
/// The discriminant is `(ascender << 1) | descender`, so a bar is built from its two
/// bits by indexing [`Bar::BY_BITS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Bar {
    /// Tracker only: the short centre part every bar has. Letter `T`.
    Tracker = 0b00,
    /// Tracker plus the lower extension. Letter `D`.
    Descender = 0b01,
    /// Tracker plus the upper extension. Letter `A`.
    Ascender = 0b10,
    /// Tracker plus both extensions. Letter `F`.
    Full = 0b11,
}

impl Bar {
    /// The bars indexed by `(ascender << 1) | descender`.
    pub const BY_BITS: [Bar; 4] = [Bar::Tracker, Bar::Descender, Bar::Ascender, Bar::Full];

    /// The bar built from its two bits: ascender present, descender present.
    pub const fn from_parts(ascender: bool, descender: bool) -> Bar {
        Bar::BY_BITS[((ascender as usize) << 1) | descender as usize]
    }

    /// Whether the bar extends above the tracker.
    pub const fn has_ascender(self) -> bool {
        matches!(self, Bar::Ascender | Bar::Full)
    }

    /// Whether the bar extends below the tracker.
    pub const fn has_descender(self) -> bool {
        matches!(self, Bar::Descender | Bar::Full)
    }

    /// The state letter as USPS writes it: `A`, `D`, `F` or `T`.
    pub const fn letter(self) -> u8 {
        b"TDAF"[self as usize]
    }

    /// The bar for a state letter (upper or lower case), if it is one.
    pub const fn from_letter(letter: u8) -> Option<Bar> {
        match letter.to_ascii_uppercase() {
            b'T' => Some(Bar::Tracker),
            b'A' => Some(Bar::Ascender),
            b'D' => Some(Bar::Descender),
            b'F' => Some(Bar::Full),
            _ => None,
        }
    }
}

/// Number of bars in every IMb.
pub const BAR_COUNT: usize = 65;

/// The USPS error classes of the reference encoder (`usps4cb` return codes), kept
/// with every input error so callers and scripts can report them as USPS does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UspsErrorClass {
    /// 09 `TRACK_STRING_BAD_LENGTH`.
    TrackingLength = 9,
    /// 10 `TRACK_STRING_HAS_INVALID_DATA`.
    TrackingNonDigit = 10,
    /// 11 `TRACK_STRING_HAS_INVALID_DIGIT2`.
    BarcodeIdDigit = 11,
    /// 12 `ROUTE_STRING_BAD_LENGTH`.
    RoutingLength = 12,
    /// 13 `ROUTE_STRING_HAS_INVALID_DATA`.
    RoutingNonDigit = 13,
}

impl UspsErrorClass {
    /// The two-digit code USPS uses (`9` prints as `09`).
    pub const fn code(self) -> u8 {
        self as u8
    }
}

/// A part of the IMb's data that an [`EncodeError`] can point at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ImbField {
    /// The whole 20-digit tracking code.
    Tracking,
    /// Barcode Identifier, tracking digits 1–2.
    BarcodeId,
    /// Service Type Identifier, tracking digits 3–5.
    ServiceType,
    /// Mailer ID, 6 or 9 digits after the STID.
    MailerId,
    /// Serial number, the rest of the tracking code.
    Serial,
    /// Routing code (ZIP, ZIP+4 or ZIP+4+delivery point).
    Routing,
}

impl ImbField {
    /// The field's name as a user reads it in a message.
    pub const fn name(self) -> &'static str {
        match self {
            ImbField::Tracking => "tracking code",
            ImbField::BarcodeId => "barcode identifier",
            ImbField::ServiceType => "service type identifier",
            ImbField::MailerId => "mailer id",
            ImbField::Serial => "serial number",
            ImbField::Routing => "routing code",
        }
    }

    /// The field's name on the wire and in JSON (`snake_case`).
    pub const fn key(self) -> &'static str {
        match self {
            ImbField::Tracking => "tracking",
            ImbField::BarcodeId => "barcode_id",
            ImbField::ServiceType => "stid",
            ImbField::MailerId => "mailer_id",
            ImbField::Serial => "serial",
            ImbField::Routing => "routing",
        }
    }
}

impl fmt::Display for ImbField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Invalid IMb input. Each error names the field and carries its USPS error class
/// ([`EncodeError::usps_class`]); the message says what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// A field has the wrong number of digits.
    #[error("error {class:02}: {field} has {found} characters; expected {expected}", class = length_class(*.field).code())]
    Length {
        /// The field.
        field: ImbField,
        /// Characters found (after trimming surrounding blanks).
        found: usize,
        /// The allowed lengths, for the message ("20", "0, 5, 9 or 11").
        expected: &'static str,
    },
    /// A field holds something other than the digits 0–9.
    #[error("error {class:02}: {field} has {found:?} at position {position}; only digits 0-9 are allowed", class = digit_class(*.field).code())]
    NonDigit {
        /// The field.
        field: ImbField,
        /// 1-based position of the first offending character within the field.
        position: usize,
        /// The offending character.
        found: char,
    },
    /// The second Barcode Identifier digit is above 4 (B3200 §2.1.3).
    #[error("error 11: barcode identifier {found} has second digit {second}; it must be 0-4 (00-04, 10-14, ... 90-94)")]
    BarcodeIdSecondDigit {
        /// The two-digit Barcode Identifier given.
        found: String,
        /// Its second digit.
        second: char,
    },
    /// A Mailer ID whose first digit does not match its length (9-digit Mailer IDs
    /// start with 9, 6-digit ones with 0–8).
    #[error("error 09: mailer id {found} has {len} digits but starts with {first}; 6-digit mailer ids start with 0-8, 9-digit ones with 9")]
    MailerIdPrefix {
        /// The Mailer ID given.
        found: String,
        /// Its length.
        len: usize,
        /// Its first digit.
        first: char,
    },
}

impl EncodeError {
    /// The USPS error class of this error.
    pub fn usps_class(&self) -> UspsErrorClass {
        match self {
            EncodeError::Length { field, .. } => length_class(*field),
            EncodeError::NonDigit { field, .. } => digit_class(*field),
            EncodeError::BarcodeIdSecondDigit { .. } => UspsErrorClass::BarcodeIdDigit,
            EncodeError::MailerIdPrefix { .. } => UspsErrorClass::TrackingLength,
        }
    }

    /// The field the error is about.
    pub fn field(&self) -> ImbField {
        match self {
            EncodeError::Length { field, .. } | EncodeError::NonDigit { field, .. } => *field,
            EncodeError::BarcodeIdSecondDigit { .. } => ImbField::BarcodeId,
            EncodeError::MailerIdPrefix { .. } => ImbField::MailerId,
        }
    }
}

/// The USPS class for a wrong length in `field` (tracking fields → 09, routing → 12).
fn length_class(field: ImbField) -> UspsErrorClass {
    match field {
        ImbField::Routing => UspsErrorClass::RoutingLength,
        _ => UspsErrorClass::TrackingLength,
    }
}

/// The USPS class for a non-digit in `field` (tracking fields → 10, routing → 13).
fn digit_class(field: ImbField) -> UspsErrorClass {
    match field {
        ImbField::Routing => UspsErrorClass::RoutingNonDigit,
        _ => UspsErrorClass::TrackingNonDigit,
    }
}

/// The 20-digit tracking code: Barcode ID (2), STID (3), Mailer ID (6 or 9) and
/// serial (9 or 6). Always valid once constructed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tracking {
    /// ASCII digits.
    digits: [u8; 20],
}

impl Tracking {
    /// Parses the 20-digit string form, checking in USPS's order: length (09),
    /// digits only (10), second Barcode ID digit 0–4 (11). Blanks around the code are
    /// ignored, as the USPS reference encoder does.
    pub fn parse(text: &str) -> Result<Tracking, EncodeError> {
        // Fast path: exactly 20 digits, nothing to trim or count.
        if let Ok(digits) = <[u8; 20]>::try_from(text.as_bytes()) {
            if all_digits(&digits) {
                check_barcode_id(&digits[..2])?;
                return Ok(Tracking { digits });
            }
        }
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let found = text.chars().count();
        if found != 20 {
            return Err(EncodeError::Length {
                field: ImbField::Tracking,
                found,
                expected: "20",
            });
        }
        let text = text.as_bytes();
        check_digits(text, ImbField::Tracking)?;
        let mut digits = [0u8; 20];
        digits.copy_from_slice(text);
        check_barcode_id(&digits[..2])?;
        Ok(Tracking { digits })
    }

    /// Builds a tracking code from its fields. The Mailer ID's first digit decides
    /// its length (9 → 9 digits, 0–8 → 6 digits) and the serial must fill the rest of
    /// the 15 digits.
    pub fn from_fields(
        barcode_id: &str,
        service_type: &str,
        mailer_id: &str,
        serial: &str,
    ) -> Result<Tracking, EncodeError> {
        let field = |field, text: &str, expected: &'static str, lengths: &[usize]| {
            let found = text.chars().count();
            if !lengths.contains(&found) {
                return Err(EncodeError::Length {
                    field,
                    found,
                    expected,
                });
            }
            check_digits(text.as_bytes(), field)
        };
        field(ImbField::BarcodeId, barcode_id, "2", &[2])?;
        check_barcode_id(barcode_id.as_bytes())?;
        field(ImbField::ServiceType, service_type, "3", &[3])?;
        field(ImbField::MailerId, mailer_id, "6 or 9", &[6, 9])?;
        let mid = mailer_id.as_bytes();
        let nine = mid[0] == b'9';
        if nine != (mid.len() == 9) {
            return Err(EncodeError::MailerIdPrefix {
                found: mailer_id.to_owned(),
                len: mid.len(),
                first: char::from(mid[0]),
            });
        }
        if nine {
            field(
                ImbField::Serial,
                serial,
                "6 (with a 9-digit mailer id)",
                &[6],
            )?;
        } else {
            field(
                ImbField::Serial,
                serial,
                "9 (with a 6-digit mailer id)",
                &[9],
            )?;
        }
        let mut digits = [0u8; 20];
        for (dst, src) in digits.iter_mut().zip(
            [barcode_id, service_type, mailer_id, serial]
                .iter()
                .flat_map(|s| s.bytes()),
        ) {
            *dst = src;
        }
        Ok(Tracking { digits })
    }

    /// The 20 digits.
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII digits are ever stored.
        std::str::from_utf8(&self.digits).unwrap_or_default()
    }

    /// Barcode Identifier (digits 1–2).
    pub fn barcode_id(&self) -> &str {
        &self.as_str()[..2]
    }

    /// Service Type Identifier (digits 3–5).
    pub fn service_type(&self) -> &str {
        &self.as_str()[2..5]
    }

    /// Length of the Mailer ID: 9 when its first digit is 9, else 6.
    pub fn mailer_id_len(&self) -> usize {
        if self.digits[5] == b'9' {
            9
        } else {
            6
        }
    }

    /// Mailer ID (6 or 9 digits).
    pub fn mailer_id(&self) -> &str {
        &self.as_str()[5..5 + self.mailer_id_len()]
    }

    /// Serial number (9 digits with a 6-digit Mailer ID, 6 with a 9-digit one).
    pub fn serial(&self) -> &str {
        &self.as_str()[5 + self.mailer_id_len()..]
    }

    /// Digit `i` (0-based) as a number.
    fn digit(&self, i: usize) -> u64 {
        u64::from(self.digits[i] - b'0')
    }

    /// Tracking digits 3–20 (STID, Mailer ID, serial) as one number below 10¹⁸.
    fn last_18_digits(&self) -> u64 {
        digits_value(&self.digits[2..])
    }
}

impl fmt::Debug for Tracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tracking({})", self.as_str())
    }
}

impl fmt::Display for Tracking {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Tracking {
    type Err = EncodeError;
    fn from_str(s: &str) -> Result<Tracking, EncodeError> {
        Tracking::parse(s)
    }
}

/// The routing code: none, a 5-digit ZIP, ZIP+4 (9) or ZIP+4+delivery point (11).
/// Leading zeros are significant: `00000` is not "no routing".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Routing {
    /// ASCII digits, `len` of them used.
    digits: [u8; 11],
    len: u8,
}

impl Routing {
    /// No routing code.
    pub const NONE: Routing = Routing {
        digits: [0; 11],
        len: 0,
    };

    /// Parses 0, 5, 9 or 11 digits, checking length (12) before digits (13), as
    /// USPS does. Blanks around the code are ignored.
    pub fn parse(text: &str) -> Result<Routing, EncodeError> {
        // Fast path: 0, 5, 9 or 11 digits, nothing to trim or count.
        let bytes = text.as_bytes();
        if matches!(bytes.len(), 0 | 5 | 9 | 11) && all_digits(bytes) {
            let mut digits = [0u8; 11];
            digits[..bytes.len()].copy_from_slice(bytes);
            return Ok(Routing {
                digits,
                len: bytes.len() as u8,
            });
        }
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let found = text.chars().count();
        if !matches!(found, 0 | 5 | 9 | 11) {
            return Err(EncodeError::Length {
                field: ImbField::Routing,
                found,
                expected: "0, 5, 9 or 11",
            });
        }
        let text = text.as_bytes();
        check_digits(text, ImbField::Routing)?;
        let mut digits = [0u8; 11];
        digits[..text.len()].copy_from_slice(text);
        Ok(Routing {
            digits,
            len: text.len() as u8,
        })
    }

    /// The digits (empty when there is no routing code).
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII digits are ever stored.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or_default()
    }

    /// Number of digits: 0, 5, 9 or 11.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether there is no routing code.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Step 1's starting value: the routing number plus the offset of its length
    /// class, so the four lengths occupy disjoint ranges (B3200 §2.2.1; facts §2).
    fn start_value(&self) -> u64 {
        let number = digits_value(&self.digits[..usize::from(self.len)]);
        match self.len {
            0 => 0,
            5 => number + 1,
            9 => number + 100_001,
            _ => number + 1_000_100_001,
        }
    }
}

impl Default for Routing {
    fn default() -> Routing {
        Routing::NONE
    }
}

impl fmt::Debug for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Routing({:?})", self.as_str())
    }
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Routing {
    type Err = EncodeError;
    fn from_str(s: &str) -> Result<Routing, EncodeError> {
        Routing::parse(s)
    }
}

/// Whether every byte is an ASCII digit, eight bytes at a time: a byte is a digit
/// when its high nibble is 3 and adding 6 leaves it at 3 (0x30–0x39 stay below 0x40).
fn all_digits(bytes: &[u8]) -> bool {
    const HIGH_NIBBLES: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const THREES: u64 = 0x3030_3030_3030_3030;
    let mut groups = bytes.chunks_exact(8);
    let groups_ok = groups.by_ref().all(|group| {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(group);
        let x = u64::from_le_bytes(eight);
        // When the first test holds, no byte carries into the next on adding 6.
        (x & HIGH_NIBBLES) == THREES
            && (x.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES) == THREES
    });
    groups_ok && groups.remainder().iter().all(u8::is_ascii_digit)
}

/// The value of up to 19 ASCII digits. Whole groups of eight are read at once
/// ([`eight_digits_value`]) so the work is not one long chain of multiply-adds.
fn digits_value(digits: &[u8]) -> u64 {
    let mut groups = digits.chunks_exact(8);
    let mut value = 0u64;
    for group in groups.by_ref() {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(group);
        value = value * 100_000_000 + eight_digits_value(eight);
    }
    groups
        .remainder()
        .iter()
        .fold(value, |n, &d| n * 10 + u64::from(d - b'0'))
}

/// Eight ASCII digits (most significant first) → their value, combining pairs, then
/// pairs of pairs, then the two halves inside one `u64` (the SWAR method described by
/// Daniel Lemire, "Fast numeric string parsing", 2022).
fn eight_digits_value(ascii: [u8; 8]) -> u64 {
    const LOW_BYTES: u64 = 0x0000_00FF_0000_00FF;
    // Little-endian load: the first (most significant) digit is the lowest byte.
    let mut v = u64::from_le_bytes(ascii).wrapping_sub(0x3030_3030_3030_3030);
    // Each byte pair (d0, d1) → 10·d0 + d1 in the pair's lower byte.
    v = v.wrapping_mul(10).wrapping_add(v >> 8);
    // Pairs of pairs → 4-digit values, then the two 4-digit halves → 8 digits, in
    // the upper half of the product.
    let first = (v & LOW_BYTES).wrapping_mul(100 + (1_000_000 << 32));
    let second = ((v >> 16) & LOW_BYTES).wrapping_mul(1 + (10_000 << 32));
    (first.wrapping_add(second)) >> 32
}

fn char_count(bytes: &[u8]) -> usize {
    String::from_utf8_lossy(bytes).chars().count()
}

fn check_digits(bytes: &[u8], field: ImbField) -> Result<(), EncodeError> {
    match bytes.iter().position(|b| !b.is_ascii_digit()) {
        None => Ok(()),
        Some(at) => {
            let rest = String::from_utf8_lossy(&bytes[at..]);
            Err(EncodeError::NonDigit {
                field,
                position: char_count(&bytes[..at]) + 1,
                found: rest.chars().next().unwrap_or('\u{FFFD}'),
            })
        }
    }
}

/// USPS error 11: the second Barcode ID digit is a radix-5 digit (B3200 §2.1.3).
fn check_barcode_id(barcode_id: &[u8]) -> Result<(), EncodeError> {
    if barcode_id[1] > b'4' {
        return Err(EncodeError::BarcodeIdSecondDigit {
            found: String::from_utf8_lossy(barcode_id).into_owned(),
            second: char::from(barcode_id[1]),
        });
    }
    Ok(())
}

/// What the encoder computed on the way, kept for tests, tracing and debugging
/// (zint keeps its codewords for the same reason). Fixed-size; no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImbSteps {
    /// Step 1: the data fields as one integer (at most 102 bits).
    pub binary: u128,
    /// Step 2: the 11-bit frame check sequence.
    pub fcs: u16,
    /// Step 4: codewords A…J after the orientation and FCS adjustments.
    pub codewords: [u16; 10],
    /// Step 5: the 13-bit characters A…J after the FCS complement.
    pub characters: [u16; 10],
}

/// An encoded Intelligent Mail barcode.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Imb {
    /// The 65 bars packed two bits each (`Bar` discriminants, bar 0 lowest): small
    /// to move around, and turned into bars or letters four at a time.
    pairs: [u64; 3],
    /// The intermediate values.
    steps: ImbSteps,
}

impl Imb {
    /// The bars as their 65 state letters (`A`, `D`, `F`, `T`), ASCII.
    pub fn letters(&self) -> [u8; BAR_COUNT] {
        let mut letters = [0u8; BAR_COUNT];
        for (chunk, out) in letters.chunks_mut(4).enumerate() {
            let byte = (self.pairs[chunk / 8] >> (8 * (chunk % 8))) as u8;
            out.copy_from_slice(&FOUR_LETTERS[usize::from(byte)][..out.len()]);
        }
        letters
    }

    /// The 65 bars, left to right.
    pub fn bars(&self) -> [Bar; BAR_COUNT] {
        bar_pairs_to_bars(&self.pairs)
    }

    /// The intermediate values of the encoding steps.
    pub fn steps(&self) -> &ImbSteps {
        &self.steps
    }

    /// The letters as a `String`.
    pub fn letters_string(&self) -> String {
        self.letters()
            .iter()
            .map(|&letter| char::from(letter))
            .collect()
    }
}

impl fmt::Debug for Imb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Imb({})", self.letters_string())
    }
}

/// Encodes a tracking code and routing code. Both are already valid, so this cannot
/// fail.
pub fn encode(tracking: &Tracking, routing: &Routing) -> Imb {
    let binary = fields_to_binary(tracking, routing);
    let fcs = crc11(binary);
    let mut codewords = binary_to_codewords(binary);
    insert_orientation_and_fcs(&mut codewords, fcs);
    let characters = codewords_to_characters(&codewords, fcs);
    let pairs = characters_to_bar_pairs(&characters);
    Imb {
        pairs,
        steps: ImbSteps {
            binary,
            fcs,
            codewords,
            characters,
        },
    }
}

/// Parses the tracking and routing strings (USPS's checks, in USPS's order) and
/// encodes them.
pub fn encode_str(tracking: &str, routing: &str) -> Result<Imb, EncodeError> {
    let tracking = Tracking::parse(tracking)?;
    let routing = Routing::parse(routing)?;
    Ok(encode(&tracking, &routing))
}

/// Step 1 (B3200 §2.2.1): routing start value, then the first Barcode ID digit in
/// radix 10, the second in radix 5, and the other 18 tracking digits in radix 10.
///
/// The routing start value (at most 10¹¹ + 10⁹ + 10⁵, 37 bits) and the two Barcode
/// ID digits fit a `u64`, as do the last 18 digits (below 10¹⁸), so the 102-bit value
/// takes one wide multiply: `head · 10¹⁸ + last 18 digits`.
fn fields_to_binary(tracking: &Tracking, routing: &Routing) -> u128 {
    let head = (routing.start_value() * 10 + tracking.digit(0)) * 5 + tracking.digit(1);
    u128::from(head) * 1_000_000_000_000_000_000 + u128::from(tracking.last_18_digits())
}

/// CRC generator polynomial, x¹¹ implicit (B3200 §2.2.2; facts §2 step 2).
const CRC_POLYNOMIAL: u16 = 0x0F35;
/// The binary value is laid out as 13 bytes = 104 bits; the top two are always zero
/// and are skipped, so the CRC covers 102 bits.
#[cfg(test)]
const CRC_DATA_BITS: u32 = 102;

/// Step 2 (B3200 §2.2.2): the 11-bit frame check sequence over the 102 data bits,
/// most significant first, register starting at 0x7FF, no reflection, no final XOR.
///
/// The CRC is linear over GF(2), so the register after all 102 bits is the XOR of
/// independent parts: what the starting value 0x7FF becomes after 102 bits, and
/// what each byte of the data contributes from its own position (the top 6 bits
/// count as one more "byte"). Those parts are tabled at compile time
/// ([`CRC_BY_POSITION`]), so the 13 lookups do not wait on each other as a
/// byte-at-a-time loop would. A test checks the result against the bit-by-bit
/// definition ([`crc11_bits`]).
fn crc11(binary: u128) -> u16 {
    let bytes = binary.to_le_bytes();
    let mut fcs = CRC_OF_START;
    for (table, &byte) in CRC_BY_POSITION.iter().zip(bytes.iter()) {
        fcs ^= table[usize::from(byte)];
    }
    fcs
}

/// Feeds the low `count` bits of `data` (most significant first) through the CRC
/// register `fcs`: the definition, one bit per step.
const fn crc11_bits(mut fcs: u16, data: u16, count: u32) -> u16 {
    let mut i = count;
    while i > 0 {
        i -= 1;
        let feedback = ((fcs >> 10) ^ (data >> i)) & 1;
        fcs <<= 1;
        if feedback == 1 {
            fcs ^= CRC_POLYNOMIAL;
        }
        fcs &= 0x7FF;
    }
    fcs
}

/// Byte-at-a-time CRC step: entry `b` is the register after feeding eight zero bits
/// into a register holding `b` in its top eight bits. Feeding eight zero bits into
/// any register `r` is then `(r << 8) ^ CRC_ZERO_BYTE[r >> 3]` (masked to 11 bits),
/// because the low three bits of `r` only shift up.
const CRC_ZERO_BYTE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = crc11_bits((b as u16) << 3, 0, 8);
        b += 1;
    }
    table
};

/// Feeds `bytes` zero bytes into register `fcs`.
const fn crc11_zero_bytes(mut fcs: u16, bytes: usize) -> u16 {
    let mut i = 0;
    while i < bytes {
        fcs = ((fcs << 8) ^ CRC_ZERO_BYTE[(fcs >> 3) as usize]) & 0x7FF;
        i += 1;
    }
    fcs
}

/// What the starting register 0x7FF contributes after all 102 data bits.
const CRC_OF_START: u16 = crc11_zero_bytes(crc11_bits(0x7FF, 0, 6), 12);

/// `CRC_BY_POSITION[k][b]`: the contribution of data byte `b` in byte `k` of the
/// value, counted from the least significant (`k` = 12 is the top 6 data bits), to
/// the final register, starting from zero.
static CRC_BY_POSITION: [[u16; 256]; 13] = {
    let mut table = [[0u16; 256]; 13];
    let mut b = 0;
    while b < 256 {
        // Byte 12 holds only 6 data bits (the 2 above them are not part of the CRC).
        if b < 64 {
            table[12][b] = crc11_zero_bytes(crc11_bits(0, b as u16, 6), 12);
        }
        let mut k = 0;
        while k < 12 {
            table[k][b] = crc11_zero_bytes(crc11_bits(0, b as u16, 8), k);
            k += 1;
        }
        b += 1;
    }
    table
};

/// Step 3 (B3200 §2.2.3): the value in mixed radix: J in radix 636, I…B in radix
/// 1365, and A the remainder (at most 658 for any valid input).
///
/// The value is held as two 51-bit halves, and as one `u64` once it fits, so that
/// every division is a `u64` division by a constant (a multiply), not a 128-bit
/// library call.
fn binary_to_codewords(binary: u128) -> [u16; 10] {
    let mut value = Halves::new(binary);
    let mut codewords = [0u16; 10];
    codewords[9] = value.div_rem(636);
    for cw in codewords[6..9].iter_mut().rev() {
        *cw = value.div_rem(1365);
    }
    // What is left is below 2¹⁰² / (636 · 1365³) ≈ 3.1 · 10¹⁸ < 2⁶⁴: one u64 will do.
    let mut rest = value.high << Halves::SHIFT | value.low;
    for cw in codewords[1..6].iter_mut().rev() {
        *cw = (rest % 1365) as u16;
        rest /= 1365;
    }
    codewords[0] = rest as u16;
    codewords
}

/// A value below 2¹⁰² as `high · 2⁵¹ + low`, for division by small constants.
struct Halves {
    high: u64,
    low: u64,
}

impl Halves {
    const SHIFT: u32 = 51;
    const LOW_MASK: u64 = (1 << Halves::SHIFT) - 1;

    fn new(value: u128) -> Halves {
        Halves {
            high: (value >> Halves::SHIFT) as u64,
            low: value as u64 & Halves::LOW_MASK,
        }
    }

    /// Divides in place by `divisor` (below 2¹³) and returns the remainder. The
    /// carried remainder times 2⁵¹ stays below 2⁶⁴, and the low quotient below 2⁵¹.
    #[inline(always)]
    fn div_rem(&mut self, divisor: u64) -> u16 {
        let carry = self.high % divisor;
        self.high /= divisor;
        let low = (carry << Halves::SHIFT) | self.low;
        self.low = low / divisor;
        (low % divisor) as u16
    }
}

/// Step 4 (B3200 §2.2.4): J doubled (orientation), and A raised by 659 when FCS
/// bit 10 is set.
fn insert_orientation_and_fcs(codewords: &mut [u16; 10], fcs: u16) {
    codewords[9] *= 2;
    if fcs & 0x400 != 0 {
        codewords[0] += 659;
    }
}

/// Step 5 (B3200 §2.2.5): each codeword through table I (5-of-13) or II (2-of-13),
/// then character *i* complemented when FCS bit *i* is set.
fn codewords_to_characters(codewords: &[u16; 10], fcs: u16) -> [u16; 10] {
    let mut characters = [0u16; 10];
    for (i, (&cw, ch)) in codewords.iter().zip(characters.iter_mut()).enumerate() {
        // Codewords are below 1365 by construction (step 3's radices).
        let character = CODEWORD_TO_CHARACTER[usize::from(cw) % CODEWORD_TO_CHARACTER.len()];
        // All ones (0x1FFF) when FCS bit i is set, else zero.
        let complement = 0u16.wrapping_sub((fcs >> i) & 1) & 0x1FFF;
        *ch = character ^ complement;
    }
    characters
}

/// Step 6 (B3200 §2.2.6): each bar takes its descender and ascender bit from the
/// characters, per Appendix D Table IV.
///
/// Every bar's two bits are gathered at once, packed two bits per bar: each
/// character's low 7 and high 6 bits are spread to their bars' positions by table
/// ([`BAR_SPREAD_LOW`], [`BAR_SPREAD_HIGH`]).
fn characters_to_bar_pairs(characters: &[u16; 10]) -> [u64; 3] {
    // Bars 1–64 fill two words exactly; bar 65 alone is read straight from the map.
    let mut pairs = [0u64; 3];
    for (i, &ch) in characters.iter().enumerate() {
        let low = &BAR_SPREAD_LOW[i][usize::from(ch & 0x7F)];
        let high = &BAR_SPREAD_HIGH[i][usize::from((ch >> 7) & 0x3F)];
        pairs[0] |= low[0] | high[0];
        pairs[1] |= low[1] | high[1];
    }
    let ((dc, db), (ac, ab)) = BAR_MAP[BAR_COUNT - 1];
    let bit = |c: u8, b: u8| u64::from(characters[usize::from(c)] >> b & 1);
    pairs[2] = bit(ac, ab) << 1 | bit(dc, db);
    pairs
}

/// Unpacks the bars, four per byte of packed pairs.
fn bar_pairs_to_bars(pairs: &[u64; 3]) -> [Bar; BAR_COUNT] {
    let mut bars = [Bar::Tracker; BAR_COUNT];
    for (chunk, quad) in bars.chunks_mut(4).enumerate() {
        let byte = (pairs[chunk / 8] >> (8 * (chunk % 8))) as u8;
        let four = &FOUR_BARS[usize::from(byte)];
        quad.copy_from_slice(&four[..quad.len()]);
    }
    bars
}

/// Bit position of bar `b`'s descender in the packed bar pairs (`2b`; the ascender is
/// the next bit up), so that bits `2b..2b+2` hold the bar's [`Bar`] discriminant.
const fn pair_bit(bar: usize, ascender: bool) -> usize {
    2 * bar + ascender as usize
}

/// Per character A–J and each value of its low 7 bits: the packed bar-pair bits of
/// bars 1–64 (2 × 64) those character bits set, per Appendix D Table IV
/// ([`BAR_MAP`]).
static BAR_SPREAD_LOW: [[[u64; 2]; 128]; 10] = bar_spread::<128>(0);
/// The same for each value of a character's high 6 bits (bits 7–12).
static BAR_SPREAD_HIGH: [[[u64; 2]; 64]; 10] = bar_spread::<64>(7);

const fn bar_spread<const N: usize>(first_bit: u8) -> [[[u64; 2]; N]; 10] {
    let mut table = [[[0u64; 2]; N]; 10];
    let mut bar = 0;
    while bar < 64 {
        let ((dc, db), (ac, ab)) = BAR_MAP[bar];
        let mut side = 0;
        while side < 2 {
            let (character, bit, position) = if side == 0 {
                (dc, db, pair_bit(bar, false))
            } else {
                (ac, ab, pair_bit(bar, true))
            };
            if bit >= first_bit && ((bit - first_bit) as usize) < N.trailing_zeros() as usize {
                let mask = 1usize << (bit - first_bit);
                let mut value = 0;
                while value < N {
                    if value & mask != 0 {
                        table[character as usize][value][position / 64] |= 1 << (position % 64);
                    }
                    value += 1;
                }
            }
            side += 1;
        }
        bar += 1;
    }
    table
}

/// Four bars packed as in [`FOUR_BARS`] → their four letters.
const FOUR_LETTERS: [[u8; 4]; 256] = {
    let mut table = [[0u8; 4]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut k = 0;
        while k < 4 {
            table[byte][k] = Bar::BY_BITS[(byte >> (2 * k)) & 3].letter();
            k += 1;
        }
        byte += 1;
    }
    table
};

/// One byte of packed bar pairs → its four bars.
const FOUR_BARS: [[Bar; 4]; 256] = {
    let mut table = [[Bar::Tracker; 4]; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut k = 0;
        while k < 4 {
            table[byte][k] = Bar::BY_BITS[(byte >> (2 * k)) & 3];
            k += 1;
        }
        byte += 1;
    }
    table
};

/// Builds an N-of-13 character table by the method of B3200 Appendix C: counting up
/// through all 13-bit values with N bits set, each value and its bit reversal are
/// stored as a pair from the front; palindromes fill the table from the back.
const fn n_of_13_table<const SIZE: usize>(bits_set: u32) -> [u16; SIZE] {
    let mut table = [0u16; SIZE];
    let mut lo = 0;
    let mut hi = SIZE - 1;
    let mut count: u16 = 0;
    while count < 8192 {
        if count.count_ones() == bits_set {
            let rev = count.reverse_bits() >> 3;
            if rev == count {
                table[hi] = count;
                hi = hi.wrapping_sub(1);
            } else if rev > count {
                table[lo] = count;
                table[lo + 1] = rev;
                lo += 2;
            }
        }
        count += 1;
    }
    assert!(
        lo == hi.wrapping_add(1),
        "Appendix C table did not fill exactly"
    );
    table
}

/// Table I (B3200 Appendix D): the 1287 5-of-13 characters, codewords 0–1286.
pub const TABLE_5OF13: [u16; 1287] = n_of_13_table(5);
/// Table II (B3200 Appendix D): the 78 2-of-13 characters, codewords 1287–1364.
pub const TABLE_2OF13: [u16; 78] = n_of_13_table(2);

/// Tables I and II end to end: codeword 0–1364 → 13-bit character (step 5).
const CODEWORD_TO_CHARACTER: [u16; 1365] = {
    let mut all = [0u16; 1365];
    let mut i = 0;
    while i < 1365 {
        all[i] = if i < TABLE_5OF13.len() {
            TABLE_5OF13[i]
        } else {
            TABLE_2OF13[i - TABLE_5OF13.len()]
        };
        i += 1;
    }
    all
};

/// Marks a 13-bit value that is in neither table.
const NOT_A_CHARACTER: u16 = u16::MAX;

/// For decoding: 13-bit character (not complemented) → codeword 0–1364.
static CHARACTER_TO_CODEWORD: [u16; 8192] = {
    let mut inverse = [NOT_A_CHARACTER; 8192];
    let mut i = 0;
    while i < TABLE_5OF13.len() {
        inverse[TABLE_5OF13[i] as usize] = i as u16;
        i += 1;
    }
    let mut j = 0;
    while j < TABLE_2OF13.len() {
        inverse[TABLE_2OF13[j] as usize] = (TABLE_5OF13.len() + j) as u16;
        j += 1;
    }
    inverse
};

/// B3200 Appendix D Table IV, bar 1 to 65 as `descender/ascender`, `Xn` = character X
/// (A–J) bit n. The same text as imb-facts.md §3.2, parsed at compile time.
const BAR_MAP_TEXT: &str = "H2/E3,B10/A0,J12/C8,F5/G11,I9/D1,A1/F12,C5/B8,E4/J11,G3/I10,D9/H6,\
F11/B4,I5/C12,J10/A2,H1/G7,D6/E9,A3/I6,G4/C7,B1/J9,H10/F2,E0/D8,G2/A4,I11/B0,J8/D12,C6/H7,\
F1/E10,B12/G9,H3/I0,F8/J7,E6/C10,D4/A5,I4/F7,H11/B9,G0/J6,A6/E8,C1/D2,F9/I12,E11/G1,J5/H4,\
D3/B2,A7/C0,B3/E1,G10/D5,I7/J4,C11/F6,A8/H12,E2/I1,F10/D0,J3/A9,G5/C4,H8/B7,F0/E5,C3/A10,\
G12/J2,D11/B6,I8/H9,F4/A11,B5/C2,J1/E12,I3/G6,H0/D7,E7/H5,A12/B11,C9/J0,G8/F3,D10/I2";

/// Per bar: ((character, bit) of the descender, (character, bit) of the ascender).
const BAR_MAP: [((u8, u8), (u8, u8)); BAR_COUNT] = parse_bar_map(BAR_MAP_TEXT.as_bytes());

const fn parse_bar_map(text: &[u8]) -> [((u8, u8), (u8, u8)); BAR_COUNT] {
    let mut map = [((0, 0), (0, 0)); BAR_COUNT];
    let mut at = 0;
    let mut bar = 0;
    while bar < BAR_COUNT {
        let (descender, next) = parse_character_bit(text, at);
        assert!(text[next] == b'/', "bar map: expected '/'");
        let (ascender, next) = parse_character_bit(text, next + 1);
        assert!(
            next == text.len() || text[next] == b',',
            "bar map: expected ','"
        );
        map[bar] = (descender, ascender);
        at = next + 1;
        bar += 1;
    }
    assert!(at == text.len() + 1, "bar map: trailing text");
    map
}

const fn parse_character_bit(text: &[u8], at: usize) -> ((u8, u8), usize) {
    let character = text[at] - b'A';
    assert!(character < 10, "bar map: character must be A-J");
    let mut bit = 0;
    let mut i = at + 1;
    while i < text.len() && text[i].is_ascii_digit() {
        bit = bit * 10 + (text[i] - b'0');
        i += 1;
    }
    assert!(bit < 13, "bar map: bit must be 0-12");
    ((character, bit), i)
}

/// Why a symbol could not be decoded. Decoding never guesses: any of these means the
/// symbol is damaged, upside down or not an IMb.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Not 65 bars.
    #[error("an imb has 65 bars; found {found}")]
    BarCount {
        /// Bars found.
        found: usize,
    },
    /// A letter other than A, D, F or T.
    #[error("bar {bar} is {found:?}; bar states are A, D, F or T")]
    BadLetter {
        /// 1-based bar number.
        bar: usize,
        /// The character found.
        found: char,
    },
    /// A 13-bit character is in neither table nor their complements.
    #[error("character {} (bits {bits:013b}) is not a valid imb character; the symbol is damaged", char::from(b'A' + *.character as u8))]
    BadCharacter {
        /// 0-based character index (A = 0).
        character: usize,
        /// Its 13 bits as read.
        bits: u16,
    },
    /// Codeword J is odd: the symbol is upside down or damaged.
    #[error("orientation codeword is odd; the symbol is upside down or damaged")]
    Orientation,
    /// Codeword A is out of range.
    #[error("codeword A is {found}; at most 1317 is possible; the symbol is damaged")]
    CodewordRange {
        /// Codeword A as read.
        found: u16,
    },
    /// The frame check sequence does not match the data.
    #[error("frame check sequence mismatch (read {read:#05x}, data gives {computed:#05x}); the symbol is damaged")]
    CheckMismatch {
        /// FCS recovered from the character complements and codeword A.
        read: u16,
        /// FCS computed from the decoded data.
        computed: u16,
    },
    /// The decoded value matches its check but is not a possible routing length.
    #[error("decoded value is beyond any routing code; the symbol is damaged")]
    ValueRange,
}

/// What a symbol carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Decoded {
    /// The 20-digit tracking code.
    pub tracking: Tracking,
    /// The routing code (possibly empty).
    pub routing: Routing,
}

/// Decodes 65 state letters (`A`, `D`, `F`, `T`, any case).
pub fn decode_letters(letters: &str) -> Result<Decoded, DecodeError> {
    let letters = letters.trim();
    let count = letters.chars().count();
    if count != BAR_COUNT {
        return Err(DecodeError::BarCount { found: count });
    }
    let mut bars = [Bar::Tracker; BAR_COUNT];
    for (i, (bar, letter)) in bars.iter_mut().zip(letters.bytes()).enumerate() {
        *bar = Bar::from_letter(letter).ok_or(DecodeError::BadLetter {
            bar: i + 1,
            found: char::from(letter),
        })?;
    }
    decode(&bars)
}

/// Decodes 65 bar states back to tracking and routing codes, checking every
/// character and the frame check sequence.
pub fn decode(bars: &[Bar; BAR_COUNT]) -> Result<Decoded, DecodeError> {
    let characters = bars_to_characters(bars);
    let (mut codewords, mut fcs) = characters_to_codewords(&characters)?;
    if codewords[9] % 2 != 0 {
        return Err(DecodeError::Orientation);
    }
    codewords[9] /= 2;
    if codewords[0] > 658 {
        if codewords[0] > 1317 {
            return Err(DecodeError::CodewordRange {
                found: codewords[0],
            });
        }
        codewords[0] -= 659;
        fcs |= 0x400;
    }
    let binary = codewords_to_binary(&codewords);
    let computed = crc11(binary);
    if computed != fcs {
        return Err(DecodeError::CheckMismatch {
            read: fcs,
            computed,
        });
    }
    binary_to_fields(binary).ok_or(DecodeError::ValueRange)
}

/// Step 6 backwards: gather each character's 13 bits from the bars.
fn bars_to_characters(bars: &[Bar; BAR_COUNT]) -> [u16; 10] {
    let mut characters = [0u16; 10];
    for (bar, &((dc, db), (ac, ab))) in bars.iter().zip(BAR_MAP.iter()) {
        if bar.has_descender() {
            characters[usize::from(dc)] |= 1 << db;
        }
        if bar.has_ascender() {
            characters[usize::from(ac)] |= 1 << ab;
        }
    }
    characters
}

/// Step 5 backwards: characters → codewords, with FCS bits 0–9 read from which
/// characters were complemented.
fn characters_to_codewords(characters: &[u16; 10]) -> Result<([u16; 10], u16), DecodeError> {
    let mut codewords = [0u16; 10];
    let mut fcs = 0u16;
    for (i, (&bits, cw)) in characters.iter().zip(codewords.iter_mut()).enumerate() {
        let plain = match bits.count_ones() {
            2 | 5 => bits,
            8 | 11 => {
                fcs |= 1 << i;
                bits ^ 0x1FFF
            }
            _ => NOT_A_CHARACTER,
        };
        *cw = match CHARACTER_TO_CODEWORD.get(usize::from(plain)) {
            Some(&cw) if cw != NOT_A_CHARACTER => cw,
            _ => return Err(DecodeError::BadCharacter { character: i, bits }),
        };
    }
    Ok((codewords, fcs))
}

/// Step 3 backwards (codewords already stripped of the step 4 adjustments).
fn codewords_to_binary(codewords: &[u16; 10]) -> u128 {
    let mut value = u128::from(codewords[0]);
    for &cw in &codewords[1..9] {
        value = value * 1365 + u128::from(cw);
    }
    value * 636 + u128::from(codewords[9])
}

/// Step 1 backwards. `None` when the routing start value is beyond 11 digits.
fn binary_to_fields(mut value: u128) -> Option<Decoded> {
    let mut digits = [0u8; 20];
    for d in digits[2..].iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
    digits[1] = b'0' + (value % 5) as u8;
    value /= 5;
    digits[0] = b'0' + (value % 10) as u8;
    value /= 10;
    let (len, number) = match value {
        0 => (0, 0),
        1..=100_000 => (5, value - 1),
        100_001..=1_000_100_000 => (9, value - 100_001),
        1_000_100_001..=100_001_000_100_000 => (11, value - 1_000_100_001),
        _ => return None,
    };
    let mut routing = Routing::NONE;
    routing.len = len as u8;
    let mut number = number;
    for d in routing.digits[..len].iter_mut().rev() {
        *d = b'0' + (number % 10) as u8;
        number /= 10;
    }
    Some(Decoded {
        tracking: Tracking { digits },
        routing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// B3200 appendix example 4 (spec Figure 5), every intermediate value (facts §2).
    #[test]
    fn appendix_example_4_step_by_step() {
        let tracking = Tracking::parse("01234567094987654321").unwrap();
        let routing = Routing::parse("01234567891").unwrap();
        let binary = fields_to_binary(&tracking, &routing);
        assert_eq!(binary, 0x016907B2A24ABC16A2E5C004B1);
        let fcs = crc11(binary);
        assert_eq!(fcs, 0x751);
        let mut cw = binary_to_codewords(binary);
        assert_eq!(cw, [14, 787, 607, 1022, 861, 19, 816, 1294, 35, 301]);
        insert_orientation_and_fcs(&mut cw, fcs);
        assert_eq!(cw, [673, 787, 607, 1022, 861, 19, 816, 1294, 35, 602]);
        let characters = codewords_to_characters(&cw, fcs);
        assert_eq!(
            characters,
            [0x0DCB, 0x085C, 0x08E4, 0x0B06, 0x06DD, 0x1740, 0x17C6, 0x1200, 0x123F, 0x1B2B]
        );
        let imb = encode(&tracking, &routing);
        assert_eq!(
            imb.letters_string(),
            "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA"
        );
    }

    #[test]
    fn digits_value_matches_plain_parsing() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..5000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 20) as usize;
            let text: String = (0..len)
                .map(|i| char::from(b'0' + ((x >> (i * 3)) % 10) as u8))
                .collect();
            let expected = if text.is_empty() {
                0
            } else {
                text.parse::<u64>().unwrap()
            };
            assert_eq!(digits_value(text.as_bytes()), expected, "{text}");
        }
        assert_eq!(
            digits_value(b"9999999999999999999"),
            9_999_999_999_999_999_999
        );
        assert_eq!(eight_digits_value(*b"01234567"), 1_234_567);
    }

    #[test]
    fn all_digits_matches_the_plain_test() {
        for len in 0..24 {
            for byte in 0..=255u8 {
                for at in 0..len {
                    let mut text = vec![b'5'; len];
                    text[at] = byte;
                    assert_eq!(all_digits(&text), byte.is_ascii_digit(), "{text:?}");
                }
            }
            assert!(all_digits(&vec![b'0'; len]) && all_digits(&vec![b'9'; len]));
        }
    }

    #[test]
    fn crc_of_zero_is_0x6e0() {
        assert_eq!(crc11(0), 0x6E0);
    }

    /// The byte-table CRC equals the bit-by-bit definition over 102 bits.
    #[test]
    fn table_crc_matches_definition() {
        let bitwise = |v: u128| {
            (0..CRC_DATA_BITS).rev().fold(0x7FF, |fcs, bit| {
                crc11_bits(fcs, ((v >> bit) & 1) as u16, 1)
            })
        };
        let mut v: u128 = 0x1234_5678_9ABC_DEF0_1357_9BDF_u128;
        for _ in 0..2000 {
            v = v.wrapping_mul(0x2545_F491_4F6C_DD1D_0123_4567_89AB_CDEF) ^ (v >> 41);
            let value = v & ((1 << CRC_DATA_BITS) - 1);
            assert_eq!(crc11(value), bitwise(value), "{value:#x}");
        }
        assert_eq!(bitwise(0x016907B2A24ABC16A2E5C004B1), 0x751);
    }

    /// Facts §3.1: entry counts, palindrome positions, first entries and the
    /// SHA-256-free checks (sum) of the generated tables.
    #[test]
    fn tables_match_appendix_d() {
        assert_eq!(
            &TABLE_5OF13[..10],
            &[31, 7936, 47, 7808, 55, 7552, 59, 7040, 61, 6016]
        );
        assert_eq!(
            &TABLE_5OF13[1277..],
            &[3142, 2634, 2386, 2274, 1612, 1364, 1252, 856, 744, 496]
        );
        assert_eq!(
            TABLE_5OF13.iter().map(|&v| u64::from(v)).sum::<u64>(),
            4_054_545
        );
        assert_eq!(
            TABLE_2OF13.iter().map(|&v| u64::from(v)).sum::<u64>(),
            98_292
        );
        let table_ii =
            "3 6144 5 5120 6 3072 9 4608 10 2560 12 1536 17 4352 18 2304 20 1280 24 768 \
            33 4224 34 2176 36 1152 40 640 48 384 65 4160 66 2112 68 1088 72 576 80 320 96 192 \
            129 4128 130 2080 132 1056 136 544 144 288 257 4112 258 2064 260 1040 264 528 \
            513 4104 514 2056 516 1032 1025 4100 1026 2052 2049 4098 4097 2050 1028 520 272 160";
        let expected: Vec<u16> = table_ii
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(TABLE_2OF13.to_vec(), expected);
    }

    #[test]
    fn bar_map_uses_every_character_bit_once() {
        let mut seen = [[false; 13]; 10];
        for &((dc, db), (ac, ab)) in &BAR_MAP {
            for (c, b) in [(dc, db), (ac, ab)] {
                assert!(!seen[usize::from(c)][usize::from(b)], "{c} {b} twice");
                seen[usize::from(c)][usize::from(b)] = true;
            }
        }
        assert!(seen.iter().flatten().all(|&s| s));
        assert_eq!(BAR_MAP[0], ((7, 2), (4, 3)));
        assert_eq!(BAR_MAP[64], ((3, 10), (8, 2)));
    }

    #[test]
    fn errors_follow_usps_order_and_name_the_field() {
        let cases: &[(&str, &str, u8, &str)] = &[
            // 0: bad BI digit and bad routing length → 11 comes first.
            ("05234567094987654321", "1234", 11, "error 11: barcode identifier 05 has second digit 5; it must be 0-4 (00-04, 10-14, ... 90-94)"),
            // 1: non-digit tracking and bad routing length → 10.
            ("4012X111574675115924", "123", 10, "error 10: tracking code has 'X' at position 5; only digits 0-9 are allowed"),
            // 2: bad routing length and non-digit routing → 12.
            ("01234567094987654321", "1234B67", 12, "error 12: routing code has 7 characters; expected 0, 5, 9 or 11"),
            // 3
            ("01234567094987654321", "1234B", 13, "error 13: routing code has 'B' at position 5; only digits 0-9 are allowed"),
            // 4: trailing blank trimmed first, as USPS case 191 shows.
            ("9198765432109876543 ", "012345678901", 9, "error 09: tracking code has 19 characters; expected 20"),
        ];
        for (i, &(tracking, routing, class, message)) in cases.iter().enumerate() {
            let err = encode_str(tracking, routing).unwrap_err();
            assert_eq!(err.usps_class().code(), class, "case {i}");
            assert_eq!(err.to_string(), message, "case {i}");
        }
    }

    #[test]
    fn fields_build_the_tracking_code() {
        let t = Tracking::from_fields("00", "270", "123456", "200800001").unwrap();
        assert_eq!(t.as_str(), "00270123456200800001");
        assert_eq!((t.mailer_id(), t.serial()), ("123456", "200800001"));
        let t = Tracking::from_fields("00", "270", "912345678", "123456").unwrap();
        assert_eq!((t.mailer_id(), t.serial()), ("912345678", "123456"));
        let err = Tracking::from_fields("00", "270", "912345", "123456789").unwrap_err();
        assert_eq!(err.field(), ImbField::MailerId);
        let err = Tracking::from_fields("00", "270", "123456", "12345").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error 09: serial number has 5 characters; expected 9 (with a 6-digit mailer id)"
        );
        let err = Tracking::from_fields("00", "27a", "123456", "123456789").unwrap_err();
        assert_eq!(err.usps_class(), UspsErrorClass::TrackingNonDigit);
    }

    #[test]
    fn decode_reports_damage() {
        let imb = encode_str("01234567094987654321", "01234567891").unwrap();
        let mut bars = imb.bars();
        bars[0] = Bar::Full;
        assert!(matches!(
            decode(&bars),
            Err(DecodeError::BadCharacter { .. })
        ));
        assert_eq!(
            decode_letters("ATF"),
            Err(DecodeError::BarCount { found: 3 })
        );
        let mut letters = imb.letters_string();
        letters.replace_range(3..4, "X");
        assert_eq!(
            decode_letters(&letters),
            Err(DecodeError::BadLetter { bar: 4, found: 'X' })
        );
    }

    #[test]
    fn largest_value_round_trips() {
        let imb = encode_str("94999999999999999999", "99999999999").unwrap();
        assert_eq!(imb.steps().binary, 0x3FBD723AB5D7EF61336687FFFF);
        let decoded = decode(&imb.bars()).unwrap();
        assert_eq!(decoded.tracking.as_str(), "94999999999999999999");
        assert_eq!(decoded.routing.as_str(), "99999999999");
    }
}
