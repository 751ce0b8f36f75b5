//! The 24-digit Intelligent Mail tray barcode (IMtb) for tray and sack labels.
//!
//! Spec: USPS-L-3216 *Labels, Tray and Sack, Barcoded, 24-Digit, Intelligent Mail
//! (Mailer Uses)*; the field layout is the one USPS-L-3216A prints on its page 17, read
//! through secondary sources, and the 24-digit format is referenced by DMM 708.6.5.3.
//! Facts with sources and confidence: `../shared/reference/imb-facts.md` §7 and §11, and
//! `../shared/reference/iv-tracking.md` Part 2, items 1–6 (the layout is corroborated by
//! the field split of USPS's IV handling-unit feed).
//!
//! | Positions      | Field                                  | Digits |
//! |----------------|----------------------------------------|--------|
//! | 1–5            | destination ZIP Code                   | 5      |
//! | 6–8            | content identifier number (CIN)        | 3      |
//! | 9              | processing code (a.k.a. label source)  | 1      |
//! | 10–15 / 10–18  | Mailer ID (9 digits when it starts with 9) | 6 / 9 |
//! | 16–23 / 19–23  | serial number                          | 8 / 5  |
//! | 24             | label type                             | 1      |
//!
//! The symbol is Code 128 ("ISS Code 128" in L-3216) in code set C throughout: Start C,
//! 12 digit pairs, check, stop = 167 modules (`imb-facts.md` §7.2).
//!
//! **Unconfirmed** (the primary text of USPS-L-3216 was not read): the meaning of the
//! processing-code and label-type digits. Secondary sources use 1 and 1 (USPS-L-3216A's
//! example) and 1 and 8 (production code for sacks). This module implements the layout
//! and accepts any digit in both positions; choosing the values is the caller's job.
//! Also unconfirmed, and not handled here: the X-dimension, bar height, label stock and
//! the human-readable format (`imb-facts.md` §14 item 2).

use std::fmt;

use super::code128::{self, Code128, Code128Char, CodeSet, CodeSetMode};

/// Digits in a tray barcode.
pub const DIGITS: usize = 24;

/// One field of the tray barcode, named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrayField {
    /// Destination ZIP Code, 5 digits.
    Zip,
    /// Content identifier number, 3 digits.
    Cin,
    /// Processing code, 1 digit.
    ProcessingCode,
    /// Mailer ID, 6 or 9 digits.
    MailerId,
    /// Serial number, 8 or 5 digits.
    Serial,
    /// Label type, 1 digit.
    LabelType,
}

impl fmt::Display for TrayField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrayField::Zip => "zip code",
            TrayField::Cin => "content identifier number",
            TrayField::ProcessingCode => "processing code",
            TrayField::MailerId => "mailer id",
            TrayField::Serial => "serial",
            TrayField::LabelType => "label type",
        })
    }
}

/// Why a tray barcode is invalid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TrayError {
    /// [`TrayBarcode::parse`]: not 24 digits (spaces are not counted).
    #[error("tray barcode has {found} digits; expected 24")]
    Length {
        /// Characters found, spaces excluded.
        found: usize,
    },
    /// [`TrayBarcode::parse`]: a character that is neither a digit nor a space.
    #[error("tray barcode character {position} is {found:?}; only digits 0-9 (and spaces between them) are allowed")]
    NonDigit {
        /// 1-based position in the text as given.
        position: usize,
        /// The character found.
        found: char,
    },
    /// A field with the wrong number of digits.
    #[error("{field} has {found} digits; expected {expected}")]
    FieldLength {
        /// The field.
        field: TrayField,
        /// Characters found.
        found: usize,
        /// The allowed count, in words ("5", "6 or 9").
        expected: &'static str,
    },
    /// A field with a character other than a digit.
    #[error("{field} character {position} is {found:?}; only digits 0-9 are allowed")]
    FieldNonDigit {
        /// The field.
        field: TrayField,
        /// 1-based position in the field.
        position: usize,
        /// The character found.
        found: char,
    },
    /// A one-digit field (processing code, label type) given a value above 9.
    #[error("{field} is {found}; expected one digit 0-9")]
    DigitRange {
        /// The field.
        field: TrayField,
        /// The value given.
        found: u8,
    },
    /// A Mailer ID whose first digit does not match its length.
    #[error("mailer id {found} has {} digits but starts with {}; 6-digit mailer ids start with 0-8, 9-digit ones with 9", .found.len(), .found.chars().next().unwrap_or('?'))]
    MailerIdPrefix {
        /// The Mailer ID given.
        found: String,
    },
    /// A serial whose length does not complete 24 digits with the Mailer ID.
    #[error("serial has {found} digits; with a {mid_len}-digit mailer id it must have {expected}")]
    SerialLength {
        /// Digits given.
        found: usize,
        /// Digits in the Mailer ID (6 or 9).
        mid_len: usize,
        /// Digits the serial needs (8 or 5).
        expected: usize,
    },
}

/// The fields of a tray barcode, for [`TrayBarcode::from_fields`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrayFields<'a> {
    /// Destination ZIP Code: 5 digits.
    pub zip: &'a str,
    /// Content identifier number (CIN) from the DMM labeling lists: 3 digits.
    pub cin: &'a str,
    /// Processing code, 0–9 (meaning unconfirmed; USPS-L-3216A's example uses 1).
    pub processing_code: u8,
    /// Mailer ID: 6 digits starting 0–8, or 9 digits starting with 9.
    pub mailer_id: &'a str,
    /// Serial number, unique per tray or sack: 8 digits with a 6-digit Mailer ID, 5 with
    /// a 9-digit one.
    pub serial: &'a str,
    /// Label type, 0–9 (meaning unconfirmed; USPS-L-3216A's example uses 1).
    pub label_type: u8,
}

/// A valid 24-digit Intelligent Mail tray barcode.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TrayBarcode {
    /// Exactly 24 ASCII digits.
    digits: String,
}

impl TrayBarcode {
    /// Parse the 24 digits, e.g. `123456781123456123123451`. Spaces anywhere are ignored,
    /// so the output of [`TrayBarcode::grouped`] parses back. The Mailer ID is 9 digits
    /// when position 10 is 9, else 6 (`imb-facts.md` §7.1), so any 24 digits are valid.
    ///
    /// # Errors
    ///
    /// [`TrayError::NonDigit`] or [`TrayError::Length`].
    pub fn parse(text: &str) -> Result<TrayBarcode, TrayError> {
        if let Some((i, c)) = text
            .chars()
            .enumerate()
            .find(|&(_, c)| !c.is_ascii_digit() && c != ' ')
        {
            return Err(TrayError::NonDigit {
                position: i + 1,
                found: c,
            });
        }
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if digits.len() != DIGITS {
            return Err(TrayError::Length {
                found: digits.len(),
            });
        }
        Ok(TrayBarcode { digits })
    }

    /// Build from fields, checking each: digits only, the right lengths, and a Mailer ID
    /// whose first digit matches its length.
    ///
    /// # Errors
    ///
    /// The first failing field, in barcode order: [`TrayError::FieldLength`],
    /// [`TrayError::FieldNonDigit`], [`TrayError::DigitRange`],
    /// [`TrayError::MailerIdPrefix`] or [`TrayError::SerialLength`].
    pub fn from_fields(fields: &TrayFields<'_>) -> Result<TrayBarcode, TrayError> {
        digit_field(TrayField::Zip, fields.zip, &[5], "5")?;
        digit_field(TrayField::Cin, fields.cin, &[3], "3")?;
        let processing = one_digit(TrayField::ProcessingCode, fields.processing_code)?;
        digit_field(TrayField::MailerId, fields.mailer_id, &[6, 9], "6 or 9")?;
        check_mailer_id_prefix(fields.mailer_id)?;
        let mid_len = fields.mailer_id.len();
        digit_field(TrayField::Serial, fields.serial, &[8, 5], "8 or 5")?;
        if mid_len + fields.serial.len() != 14 {
            return Err(TrayError::SerialLength {
                found: fields.serial.len(),
                mid_len,
                expected: 14 - mid_len,
            });
        }
        let label = one_digit(TrayField::LabelType, fields.label_type)?;
        let digits = [
            fields.zip,
            fields.cin,
            &processing.to_string(),
            fields.mailer_id,
            fields.serial,
            &label.to_string(),
        ]
        .concat();
        Ok(TrayBarcode { digits })
    }

    /// The 24 digits.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// Destination ZIP Code (positions 1–5).
    pub fn zip(&self) -> &str {
        self.slice(0, 5)
    }

    /// Content identifier number (positions 6–8).
    pub fn cin(&self) -> &str {
        self.slice(5, 8)
    }

    /// Processing code (position 9).
    pub fn processing_code(&self) -> u8 {
        self.digit(8)
    }

    /// Mailer ID: 9 digits when it starts with 9, else 6 (from position 10).
    pub fn mailer_id(&self) -> &str {
        self.slice(9, 9 + self.mid_len())
    }

    /// Serial number (after the Mailer ID, up to position 23): 8 or 5 digits.
    pub fn serial(&self) -> &str {
        self.slice(9 + self.mid_len(), 23)
    }

    /// Label type (position 24).
    pub fn label_type(&self) -> u8 {
        self.digit(23)
    }

    /// The fields separated by single spaces, e.g. `12345 678 1 123456 12312345 1`.
    /// [`TrayBarcode::parse`] reads it back.
    pub fn grouped(&self) -> String {
        format!(
            "{} {} {} {} {} {}",
            self.zip(),
            self.cin(),
            self.processing_code(),
            self.mailer_id(),
            self.serial(),
            self.label_type()
        )
    }

    /// The fields with their names, for operators, e.g. `zip 12345, cin 678, processing
    /// code 1, mailer id 123456, serial 12312345, label type 1`.
    pub fn breakdown(&self) -> String {
        format!(
            "zip {}, cin {}, processing code {}, mailer id {}, serial {}, label type {}",
            self.zip(),
            self.cin(),
            self.processing_code(),
            self.mailer_id(),
            self.serial(),
            self.label_type()
        )
    }

    /// The Code 128 symbol: Start C, the 12 digit pairs, check and stop (167 modules).
    pub fn symbol(&self) -> Code128 {
        let chars: Vec<Code128Char> = self.digits.bytes().map(Code128Char::Ascii).collect();
        code128::encode_with(&chars, CodeSetMode::Only(CodeSet::C))
            // Invariant: 24 ASCII digits are 12 set C pairs, within code128::MAX_INPUT.
            .expect("24 digits always encode in code set C")
    }

    fn mid_len(&self) -> usize {
        if self.digits.as_bytes().get(9) == Some(&b'9') {
            9
        } else {
            6
        }
    }

    /// Digits `from..to`; `digits` is always 24 ASCII digits, so the range is valid.
    fn slice(&self, from: usize, to: usize) -> &str {
        self.digits.get(from..to).unwrap_or("")
    }

    fn digit(&self, at: usize) -> u8 {
        self.digits
            .as_bytes()
            .get(at)
            .map_or(0, |b| b.wrapping_sub(b'0'))
    }
}

impl fmt::Display for TrayBarcode {
    /// The 24 digits.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

/// Check that `value` is digits only and has one of the `allowed` lengths.
fn digit_field(
    field: TrayField,
    value: &str,
    allowed: &[usize],
    expected: &'static str,
) -> Result<(), TrayError> {
    if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(TrayError::FieldNonDigit {
            field,
            position: i + 1,
            found: c,
        });
    }
    if !allowed.contains(&value.len()) {
        return Err(TrayError::FieldLength {
            field,
            found: value.len(),
            expected,
        });
    }
    Ok(())
}

/// Check a one-digit field.
fn one_digit(field: TrayField, value: u8) -> Result<u8, TrayError> {
    if value <= 9 {
        Ok(value)
    } else {
        Err(TrayError::DigitRange {
            field,
            found: value,
        })
    }
}

/// A 6-digit Mailer ID starts with 0–8, a 9-digit one with 9 (`imb-facts.md` §7.1, §12).
fn check_mailer_id_prefix(mid: &str) -> Result<(), TrayError> {
    let starts_with_9 = mid.starts_with('9');
    if starts_with_9 == (mid.len() == 9) {
        Ok(())
    } else {
        Err(TrayError::MailerIdPrefix {
            found: mid.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L3216A: &str = "123456781123456123123451";

    fn fields<'a>(mid: &'a str, serial: &'a str) -> TrayFields<'a> {
        TrayFields {
            zip: "12345",
            cin: "678",
            processing_code: 1,
            mailer_id: mid,
            serial,
            label_type: 1,
        }
    }

    #[test]
    fn l3216a_example_splits_and_encodes() {
        // USPS-L-3216A's own example (imb-facts.md §7.1, §7.2).
        let t = TrayBarcode::parse(L3216A).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                t.zip(),
                t.cin(),
                t.processing_code(),
                t.mailer_id(),
                t.serial(),
                t.label_type()
            ),
            ("12345", "678", 1, "123456", "12312345", 1)
        );
        let s = t.symbol();
        assert_eq!(
            s.values(),
            vec![105, 12, 34, 56, 78, 11, 23, 45, 61, 23, 12, 34, 51, 90, 106]
        );
        assert_eq!(s.modules(), 167);
        assert_eq!(t.to_string(), L3216A);
        assert_eq!(t.grouped(), "12345 678 1 123456 12312345 1");
        assert_eq!(
            t.breakdown(),
            "zip 12345, cin 678, processing code 1, mailer id 123456, serial 12312345, label type 1"
        );
        assert_eq!(
            TrayBarcode::from_fields(&fields("123456", "12312345")),
            Ok(t.clone())
        );
        assert_eq!(TrayBarcode::parse(&t.grouped()), Ok(t));
    }

    #[test]
    fn nine_digit_mailer_id() {
        // Sack form seen in production code: ZIP5 + CIN3 + 1 + MID9 + serial5 + 8.
        let t = TrayBarcode::parse("943011231912345678000428").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (
                t.zip(),
                t.cin(),
                t.processing_code(),
                t.mailer_id(),
                t.serial(),
                t.label_type()
            ),
            ("94301", "123", 1, "912345678", "00042", 8)
        );
        assert_eq!(t.symbol().modules(), 167);
        let back = TrayFields {
            zip: "94301",
            cin: "123",
            processing_code: 1,
            mailer_id: "912345678",
            serial: "00042",
            label_type: 8,
        };
        assert_eq!(TrayBarcode::from_fields(&back), Ok(t));
    }

    #[test]
    fn parse_errors() {
        let cases: &[(&str, &str)] = &[
            // 0
            ("", "tray barcode has 0 digits; expected 24"),
            // 1
            ("12345678112345612312345", "tray barcode has 23 digits; expected 24"),
            // 2
            ("1234567811234561231234512", "tray barcode has 25 digits; expected 24"),
            // 3
            (
                "12345-678112345612312345",
                "tray barcode character 6 is '-'; only digits 0-9 (and spaces between them) are allowed",
            ),
            // 4: a non-ASCII digit is not a digit
            (
                "１23456781123456123123451",
                "tray barcode character 1 is '１'; only digits 0-9 (and spaces between them) are allowed",
            ),
        ];
        for (i, (text, message)) in cases.iter().enumerate() {
            let got = TrayBarcode::parse(text).map_err(|e| e.to_string());
            assert_eq!(got, Err(message.to_string()), "case {i}");
        }
    }

    #[test]
    fn field_errors() {
        let ok = fields("123456", "12312345");
        let cases: Vec<(TrayFields<'_>, &str)> = vec![
            // 0
            (TrayFields { zip: "1234", ..ok }, "zip code has 4 digits; expected 5"),
            // 1
            (
                TrayFields { zip: "1234a", ..ok },
                "zip code character 5 is 'a'; only digits 0-9 are allowed",
            ),
            // 2
            (
                TrayFields { cin: "6789", ..ok },
                "content identifier number has 4 digits; expected 3",
            ),
            // 3
            (
                TrayFields { processing_code: 10, ..ok },
                "processing code is 10; expected one digit 0-9",
            ),
            // 4
            (fields("12345", "12312345"), "mailer id has 5 digits; expected 6 or 9"),
            // 5
            (
                fields("912345", "12312345"),
                "mailer id 912345 has 6 digits but starts with 9; 6-digit mailer ids start with 0-8, 9-digit ones with 9",
            ),
            // 6
            (
                fields("812345678", "12345"),
                "mailer id 812345678 has 9 digits but starts with 8; 6-digit mailer ids start with 0-8, 9-digit ones with 9",
            ),
            // 7
            (fields("123456", "12345"), "serial has 5 digits; with a 6-digit mailer id it must have 8"),
            // 8
            (fields("912345678", "12312345"), "serial has 8 digits; with a 9-digit mailer id it must have 5"),
            // 9
            (fields("123456", "1231234"), "serial has 7 digits; expected 8 or 5"),
            // 10
            (
                fields("123456", "1231234x"),
                "serial character 8 is 'x'; only digits 0-9 are allowed",
            ),
            // 11
            (
                TrayFields { label_type: 255, ..ok },
                "label type is 255; expected one digit 0-9",
            ),
        ];
        for (i, (f, message)) in cases.iter().enumerate() {
            let got = TrayBarcode::from_fields(f).map_err(|e| e.to_string());
            assert_eq!(got, Err(message.to_string()), "case {i}");
        }
    }

    #[test]
    fn any_processing_code_and_label_type_is_accepted() {
        for d in 0..=9 {
            let f = TrayFields {
                processing_code: d,
                label_type: d,
                ..fields("123456", "12312345")
            };
            let t = TrayBarcode::from_fields(&f).unwrap_or_else(|e| panic!("{d}: {e}"));
            assert_eq!((t.processing_code(), t.label_type()), (d, d));
        }
    }
}
