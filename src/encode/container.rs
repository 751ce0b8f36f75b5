//! The Intelligent Mail container barcode (IMcb) for pallet and container placards.
//!
//! Spec: USPS-B-3215 *Intelligent Mail Container Barcode* (PostalPro, 2008-03-30; the
//! body was read only through secondary sources and IBM's BCOCA description). Facts with
//! sources and confidence: `../shared/reference/imb-facts.md` §8 and §11, superseded where
//! they disagree by `../shared/reference/iv-tracking.md` Part 2, items 7–13.
//!
//! The data is always 21 characters:
//!
//! | Characters | Content                                                          |
//! |------------|------------------------------------------------------------------|
//! | 1–2        | `99`, the application identifier                                 |
//! | 3          | `M`                                                              |
//! | 4–9        | a 6-digit Mailer ID 000000–899999, then a 12-character serial    |
//! | 4–12       | or a 9-digit Mailer ID 900000000–999999999, then a 9-character serial |
//!
//! Serials are upper-case letters and digits. A shorter serial is padded on the left with
//! zeros (recommended) or with dashes (`-`, also allowed by the spec);
//! [`SerialPadding`] chooses, zeros by default.
//!
//! The symbol is GS1-128: FNC1 right after the start character, then the 21 characters
//! (BCOCA; USPS's own sample label; iv-tracking.md Part 2 item 8). Production code that
//! emits plain Code 128 without FNC1 does not conform.
//!
//! Which code sets the symbol uses is **not confirmed**. USPS recommends an overall length
//! of 6.25–7.25 in at a 23–27 mil module, which fits only when every data character is
//! one code set B symbol character: 24 symbol characters + stop = 277 modules, 6.9 in at
//! 25 mil. The shortest encoding (189 modules for an all-digit serial) is about 4.7 in:
//! under the 7.25-in maximum but outside the recommendation. That is an inference from
//! the length figures (iv-tracking.md Part 2 item 11), confidence "?" until USPS-B-3215 is
//! read; so both forms are offered ([`ContainerEncoding`]), set B by default.
//!
//! The human-readable line has two blanks between fields, `99  M  MID  SERIAL` (BCOCA);
//! USPS's own 6×4 sample label uses single spaces. Banner text and identification bars
//! belong to the layout stage, not here.

use std::fmt;

use super::code128::{self, Code128, Code128Char, CodeSet, CodeSetMode};

/// Characters of container barcode data (FNC1 not counted).
pub const DATA_LEN: usize = 21;

/// The application identifier that starts the data.
pub const APPLICATION_IDENTIFIER: &str = "99";

/// How a serial shorter than its field is padded on the left.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SerialPadding {
    /// With `0` (recommended by the spec).
    #[default]
    Zeros,
    /// With `-` (ASCII 45), the spec's alternative.
    Dashes,
}

impl SerialPadding {
    const fn byte(self) -> u8 {
        match self {
            SerialPadding::Zeros => b'0',
            SerialPadding::Dashes => b'-',
        }
    }
}

/// Which code sets [`ContainerBarcode::symbol`] uses after FNC1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ContainerEncoding {
    /// Start B, FNC1 and the 21 characters in code set B: always 277 modules. The default:
    /// the only form that meets USPS's recommended 6.25–7.25 in overall length at a
    /// 23–27 mil module. Inferred from those figures, not read in USPS-B-3215 (confidence
    /// "?"; see the module documentation).
    #[default]
    SetB,
    /// The fewest symbol characters ([`CodeSetMode::Shortest`]), e.g. 189 modules for an
    /// all-digit serial: shorter, but below the recommended length at 23–27 mil.
    Shortest,
}

/// Why container barcode data is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ContainerError {
    /// [`ContainerBarcode::parse`]: not 21 characters once spaces are removed.
    #[error("container barcode has {found} characters (spaces not counted); expected 21: 99, M, mailer id and serial")]
    Length {
        /// Characters found, spaces excluded.
        found: usize,
    },
    /// [`ContainerBarcode::parse`]: the data does not start with `99`.
    #[error("container barcode starts with {found:?}; expected application identifier 99")]
    ApplicationIdentifier {
        /// The first two characters.
        found: String,
    },
    /// [`ContainerBarcode::parse`]: the third character is not `M`.
    #[error("container barcode character 3 is {found:?}; expected 'M' after 99")]
    Marker {
        /// The character found.
        found: char,
    },
    /// A Mailer ID that is not 6 or 9 characters.
    #[error("mailer id has {found} digits; expected 6 (first digit 0-8) or 9 (first digit 9)")]
    MailerIdLength {
        /// Characters given.
        found: usize,
    },
    /// A Mailer ID character that is not a digit.
    #[error("mailer id character {position} is {found:?}; only digits 0-9 are allowed")]
    MailerIdChar {
        /// 1-based position in the Mailer ID.
        position: usize,
        /// The character found.
        found: char,
    },
    /// A Mailer ID whose first digit does not match its length.
    #[error("mailer id {found} has {} digits but starts with {}; 6-digit mailer ids start with 0-8, 9-digit ones with 9", .found.len(), .found.chars().next().unwrap_or('?'))]
    MailerIdPrefix {
        /// The Mailer ID given.
        found: String,
    },
    /// An empty serial (or, when parsing, one made only of padding dashes).
    #[error("serial is empty; give 1-{max} upper-case letters or digits for a {mid_len}-digit mailer id")]
    SerialEmpty {
        /// Digits in the Mailer ID (6 or 9).
        mid_len: usize,
        /// The longest serial allowed with it (12 or 9).
        max: usize,
    },
    /// A serial longer than its field.
    #[error("serial has {found} characters; a {mid_len}-digit mailer id allows at most {max}")]
    SerialTooLong {
        /// Characters given.
        found: usize,
        /// Digits in the Mailer ID (6 or 9).
        mid_len: usize,
        /// The longest serial allowed with it (12 or 9).
        max: usize,
    },
    /// A serial character other than an upper-case letter or a digit.
    #[error("serial character {position} is {found:?}; only upper-case letters A-Z and digits 0-9 are allowed{}", if .found.is_ascii_lowercase() { " (write letters in upper case)" } else { "" })]
    SerialChar {
        /// 1-based position in the serial (padding included when parsing).
        position: usize,
        /// The character found.
        found: char,
    },
}

/// Valid IM container barcode data: `99`, `M`, Mailer ID and padded serial.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerBarcode {
    /// Exactly 21 ASCII characters: `99M`, the Mailer ID digits, then the serial
    /// (upper-case letters and digits, possibly after padding dashes).
    data: String,
}

impl ContainerBarcode {
    /// Build from a Mailer ID and a serial, padding the serial with zeros.
    ///
    /// # Errors
    ///
    /// As [`ContainerBarcode::with_padding`].
    pub fn new(mailer_id: &str, serial: &str) -> Result<ContainerBarcode, ContainerError> {
        ContainerBarcode::with_padding(mailer_id, serial, SerialPadding::Zeros)
    }

    /// Build from a Mailer ID (6 digits starting 0–8, or 9 digits starting with 9) and a
    /// serial of 1–12 or 1–9 upper-case letters and digits, padded on the left to fill
    /// its field.
    ///
    /// # Errors
    ///
    /// [`ContainerError::MailerIdLength`], [`ContainerError::MailerIdChar`],
    /// [`ContainerError::MailerIdPrefix`], [`ContainerError::SerialEmpty`],
    /// [`ContainerError::SerialChar`] or [`ContainerError::SerialTooLong`].
    pub fn with_padding(
        mailer_id: &str,
        serial: &str,
        padding: SerialPadding,
    ) -> Result<ContainerBarcode, ContainerError> {
        check_mailer_id(mailer_id)?;
        let max = serial_len(mailer_id.len());
        check_serial(serial, mailer_id.len())?;
        let pad = max.saturating_sub(serial.len());
        let mut data = String::with_capacity(DATA_LEN);
        data.push_str(APPLICATION_IDENTIFIER);
        data.push('M');
        data.push_str(mailer_id);
        data.extend(std::iter::repeat_n(char::from(padding.byte()), pad));
        data.push_str(serial);
        Ok(ContainerBarcode { data })
    }

    /// Parse the 21 characters, with or without spaces between them:
    /// `99M900066875EMA000051`, `99 M 900066875 EMA000051` or the human-readable
    /// `99  M  900066875  EMA000051`. The Mailer ID is 9 digits when it starts with 9,
    /// else 6; the serial may start with padding dashes.
    ///
    /// # Errors
    ///
    /// [`ContainerError::Length`], [`ContainerError::ApplicationIdentifier`],
    /// [`ContainerError::Marker`], [`ContainerError::MailerIdChar`],
    /// [`ContainerError::SerialEmpty`] or [`ContainerError::SerialChar`].
    pub fn parse(text: &str) -> Result<ContainerBarcode, ContainerError> {
        let chars: Vec<char> = text.chars().filter(|&c| c != ' ').collect();
        if chars.len() != DATA_LEN {
            return Err(ContainerError::Length { found: chars.len() });
        }
        let (ai, rest) = chars.split_at(2);
        if ai != ['9', '9'] {
            return Err(ContainerError::ApplicationIdentifier {
                found: ai.iter().collect(),
            });
        }
        let (marker, rest) = rest.split_at(1);
        if marker != ['M'] {
            return Err(ContainerError::Marker {
                found: marker.first().copied().unwrap_or(' '),
            });
        }
        let mid_len = if rest.first() == Some(&'9') { 9 } else { 6 };
        let (mid, serial) = rest.split_at(mid_len);
        check_mailer_id(&mid.iter().collect::<String>())?;
        check_padded_serial(serial, mid_len)?;
        Ok(ContainerBarcode {
            data: chars.into_iter().collect(),
        })
    }

    /// The 21 data characters, e.g. `99M900066875EMA000051` (FNC1 not included).
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The Mailer ID: 6 or 9 digits.
    pub fn mailer_id(&self) -> &str {
        self.data.get(3..3 + self.mid_len()).unwrap_or("")
    }

    /// The serial as encoded, padding included: 12 or 9 characters.
    pub fn serial(&self) -> &str {
        self.data.get(3 + self.mid_len()..).unwrap_or("")
    }

    /// The human-readable line as BCOCA shows it, two blanks between fields:
    /// `99  M  900066875  EMA000051`.
    pub fn human_readable(&self) -> String {
        format!(
            "{APPLICATION_IDENTIFIER}  M  {}  {}",
            self.mailer_id(),
            self.serial()
        )
    }

    /// The symbol's input: FNC1, then the 21 data characters.
    pub fn symbol_chars(&self) -> Vec<Code128Char> {
        std::iter::once(Code128Char::Fnc1)
            .chain(self.data.bytes().map(Code128Char::Ascii))
            .collect()
    }

    /// The GS1-128 symbol: start, FNC1, the data, check and stop.
    pub fn symbol(&self, encoding: ContainerEncoding) -> Code128 {
        let mode = match encoding {
            ContainerEncoding::SetB => CodeSetMode::Only(CodeSet::B),
            ContainerEncoding::Shortest => CodeSetMode::Shortest,
        };
        code128::encode_with(&self.symbol_chars(), mode)
            // Invariant: FNC1 + 21 characters from 0-9, A-Z and '-' are in code set B and
            // within code128::MAX_INPUT, so no mode can fail.
            .expect("container data always encodes")
    }

    fn mid_len(&self) -> usize {
        if self.data.as_bytes().get(3) == Some(&b'9') {
            9
        } else {
            6
        }
    }
}

impl fmt::Display for ContainerBarcode {
    /// The 21 data characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.data)
    }
}

/// The serial field's length for a Mailer ID of `mid_len` digits: 12 or 9.
const fn serial_len(mid_len: usize) -> usize {
    DATA_LEN - 3 - mid_len
}

/// 6 digits starting 0–8, or 9 digits starting with 9.
fn check_mailer_id(mid: &str) -> Result<(), ContainerError> {
    let len = mid.chars().count();
    if len != 6 && len != 9 {
        return Err(ContainerError::MailerIdLength { found: len });
    }
    if let Some((i, c)) = mid.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(ContainerError::MailerIdChar {
            position: i + 1,
            found: c,
        });
    }
    if mid.starts_with('9') != (len == 9) {
        return Err(ContainerError::MailerIdPrefix {
            found: mid.to_string(),
        });
    }
    Ok(())
}

/// 1 to 12 (or 9) upper-case letters and digits, no padding.
fn check_serial(serial: &str, mid_len: usize) -> Result<(), ContainerError> {
    let max = serial_len(mid_len);
    if serial.is_empty() {
        return Err(ContainerError::SerialEmpty { mid_len, max });
    }
    check_serial_chars(serial.chars(), 0)?;
    let found = serial.chars().count();
    if found > max {
        return Err(ContainerError::SerialTooLong {
            found,
            mid_len,
            max,
        });
    }
    Ok(())
}

/// A full serial field from [`ContainerBarcode::parse`]: padding dashes, then at least
/// one upper-case letter or digit.
fn check_padded_serial(serial: &[char], mid_len: usize) -> Result<(), ContainerError> {
    let dashes = serial.iter().take_while(|&&c| c == '-').count();
    if dashes == serial.len() {
        return Err(ContainerError::SerialEmpty {
            mid_len,
            max: serial_len(mid_len),
        });
    }
    check_serial_chars(serial.iter().copied().skip(dashes), dashes)
}

/// Every character an upper-case letter or digit; positions reported from `offset + 1`.
fn check_serial_chars(
    chars: impl Iterator<Item = char>,
    offset: usize,
) -> Result<(), ContainerError> {
    for (i, c) in chars.enumerate() {
        if !(c.is_ascii_uppercase() || c.is_ascii_digit()) {
            return Err(ContainerError::SerialChar {
                position: offset + i + 1,
                found: c,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(result: Result<ContainerBarcode, ContainerError>) -> ContainerBarcode {
        result.unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn usps_containers_api_example() {
        // USPS Containers API example container id (iv-tracking.md Part 2 item 7).
        let c = ok(ContainerBarcode::new("900066875", "EMA000051"));
        assert_eq!(c.data(), "99M900066875EMA000051");
        assert_eq!((c.mailer_id(), c.serial()), ("900066875", "EMA000051"));
        assert_eq!(c.human_readable(), "99  M  900066875  EMA000051");
        assert_eq!(c.to_string(), "99M900066875EMA000051");
        for text in [
            "99M900066875EMA000051",
            "99 M 900066875 EMA000051",
            "99  M  900066875  EMA000051",
        ] {
            assert_eq!(ContainerBarcode::parse(text), Ok(c.clone()), "{text}");
        }
    }

    #[test]
    fn padding() {
        let cases: &[(&str, &str, SerialPadding, &str)] = &[
            // 0: 6-digit MID, 12-character serial field
            (
                "123456",
                "42",
                SerialPadding::Zeros,
                "99M123456000000000042",
            ),
            // 1
            (
                "123456",
                "42",
                SerialPadding::Dashes,
                "99M123456----------42",
            ),
            // 2: 9-digit MID, 9-character serial field
            (
                "912345678",
                "A1",
                SerialPadding::Dashes,
                "99M912345678-------A1",
            ),
            // 3: full-length serial needs no padding
            (
                "012345",
                "ABCDEFGHIJKL",
                SerialPadding::Dashes,
                "99M012345ABCDEFGHIJKL",
            ),
        ];
        for (i, (mid, serial, padding, data)) in cases.iter().enumerate() {
            let c = ok(ContainerBarcode::with_padding(mid, serial, *padding));
            assert_eq!(c.data(), *data, "case {i}");
            assert_eq!(ContainerBarcode::parse(data), Ok(c), "case {i}");
        }
    }

    #[test]
    fn symbol_lengths() {
        // imb-facts.md §11 / iv-tracking.md Part 2 item 11: 277 modules in set B,
        // 189 for the shortest form of all-digit data.
        for (mid, serial) in [("123456", "1"), ("912345678", "123456789")] {
            let c = ok(ContainerBarcode::new(mid, serial));
            let b = c.symbol(ContainerEncoding::SetB);
            let short = c.symbol(ContainerEncoding::Shortest);
            assert_eq!((b.modules(), short.modules()), (277, 189), "{mid} {serial}");
            assert_eq!(b.start_value(), code128::START_B);
            // GS1-128: FNC1 is the first symbol character after the start.
            assert_eq!(b.data_values().first(), Some(&code128::FNC1));
            assert_eq!(short.data_values().first(), Some(&code128::FNC1));
        }
        assert_eq!(ContainerEncoding::default(), ContainerEncoding::SetB);
    }

    #[test]
    fn set_b_values() {
        // Start B, FNC1, '9' = 57 - 32 = 25 twice, 'M' = 77 - 32 = 45, digits 16-25,
        // 'E' 37, 'A' 33.
        let c = ok(ContainerBarcode::new("900066875", "EMA000051"));
        let s = c.symbol(ContainerEncoding::SetB);
        assert_eq!(
            s.data_values(),
            [
                102, 25, 25, 45, 25, 16, 16, 16, 22, 22, 24, 23, 21, 37, 45, 33, 16, 16, 16, 16,
                21, 17
            ]
        );
    }

    #[test]
    fn new_errors() {
        let cases: &[(&str, &str, &str)] = &[
            // 0
            ("12345", "1", "mailer id has 5 digits; expected 6 (first digit 0-8) or 9 (first digit 9)"),
            // 1
            ("12345a", "1", "mailer id character 6 is 'a'; only digits 0-9 are allowed"),
            // 2
            (
                "912345",
                "1",
                "mailer id 912345 has 6 digits but starts with 9; 6-digit mailer ids start with 0-8, 9-digit ones with 9",
            ),
            // 3
            (
                "123456789",
                "1",
                "mailer id 123456789 has 9 digits but starts with 1; 6-digit mailer ids start with 0-8, 9-digit ones with 9",
            ),
            // 4
            ("123456", "", "serial is empty; give 1-12 upper-case letters or digits for a 6-digit mailer id"),
            // 5
            (
                "912345678",
                "ABCDEFGHIJ",
                "serial has 10 characters; a 9-digit mailer id allows at most 9",
            ),
            // 6
            (
                "123456",
                "AB-1",
                "serial character 3 is '-'; only upper-case letters A-Z and digits 0-9 are allowed",
            ),
            // 7
            (
                "123456",
                "Ab1",
                "serial character 2 is 'b'; only upper-case letters A-Z and digits 0-9 are allowed (write letters in upper case)",
            ),
            // 8
            (
                "123456",
                "Ä",
                "serial character 1 is 'Ä'; only upper-case letters A-Z and digits 0-9 are allowed",
            ),
        ];
        for (i, (mid, serial, message)) in cases.iter().enumerate() {
            let got = ContainerBarcode::new(mid, serial).map_err(|e| e.to_string());
            assert_eq!(got, Err(message.to_string()), "case {i}");
        }
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            // 0
            (
                "99M90006687EMA000051",
                "container barcode has 20 characters (spaces not counted); expected 21: 99, M, mailer id and serial",
            ),
            // 1
            ("98M900066875EMA000051", "container barcode starts with \"98\"; expected application identifier 99"),
            // 2
            ("99X900066875EMA000051", "container barcode character 3 is 'X'; expected 'M' after 99"),
            // 3: first MID digit not 9, so a 6-digit MID and a 12-character serial
            ("99M12345XABCDEFGHIJKL", "mailer id character 6 is 'X'; only digits 0-9 are allowed"),
            // 4
            (
                "99M900066875ema000051",
                "serial character 1 is 'e'; only upper-case letters A-Z and digits 0-9 are allowed (write letters in upper case)",
            ),
            // 5: dashes only as left padding
            (
                "99M900066875---A-0051",
                "serial character 5 is '-'; only upper-case letters A-Z and digits 0-9 are allowed",
            ),
            // 6: a serial made only of padding
            ("99M900066875---------", "serial is empty; give 1-9 upper-case letters or digits for a 9-digit mailer id"),
            // 7
            ("99M123456------------", "serial is empty; give 1-12 upper-case letters or digits for a 6-digit mailer id"),
            // 8: spaces are not counted, other blanks are characters
            ("99M900066875EMA00005\t1", "container barcode has 22 characters (spaces not counted); expected 21: 99, M, mailer id and serial"),
            // 9: non-ASCII characters count as one each and never split
            ("99M900066875EMA00005é", "serial character 9 is 'é'; only upper-case letters A-Z and digits 0-9 are allowed"),
        ];
        for (i, (text, message)) in cases.iter().enumerate() {
            let got = ContainerBarcode::parse(text).map_err(|e| e.to_string());
            assert_eq!(got, Err(message.to_string()), "case {i}");
        }
    }
}
