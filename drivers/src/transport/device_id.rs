//! The IEEE 1284 Device ID: the `KEY:value;` string a printer gives about itself.
//!
//! Sources (facts in `../shared/reference/printer-langs.md` §5.1, §5.2, §7.8):
//! - IEEE 1284-1994 §7.6 "Device ID" as summarised in the libieee1284 man page and the
//!   USB Printer Class 1.1 specification (GET_DEVICE_ID): a series of `KEY:value;`
//!   pairs; keys are case-sensitive; `MANUFACTURER`/`MFG`, `MODEL`/`MDL` and
//!   `COMMAND SET`/`CMD` are required; `CLASS`/`CLS`, `DESCRIPTION`/`DES` and
//!   `SERIALNUMBER`/`SERN`/`SN` are common extras; a value may list several items
//!   separated by commas; `:`, `,` and `;` are reserved.
//! - Over USB (GET_DEVICE_ID) and from Linux usblp (`IOCNR_GET_DEVICE_ID`) the string
//!   starts with a **2-byte big-endian length that counts itself**. The string read from
//!   sysfs (`ieee1284_id`) has no prefix.
//!
//! What real devices get wrong, and what [`DeviceId::parse`] does about it:
//! - Some count the text without the prefix (the Linux 6.1 printer gadget does): when
//!   exactly two bytes more than announced arrive, they are kept.
//! - Some send the length little-endian (CUPS's USB backend re-reads it LSB-first when the
//!   big-endian value is out of range): the same is done here.
//! - Buffers arrive NUL-padded or with junk after the announced length: parsing stops at
//!   the length and at the first NUL.
//! - A reply cut short (the length announces more than arrived): the last, unterminated
//!   pair is dropped, since its value may be cut (`MDL:HL-20`) and a wrong model is worse
//!   than none. Without a prefix, a missing final `;` is accepted (many devices omit it).
//! - Whitespace and line breaks around keys and values are trimmed; pieces without `:`
//!   and pairs with an empty key are skipped. Nothing here panics on any input.
//!
//! [`DeviceId::language_hint`] picks labeld's language from `CMD`. Only `ZPL` (Zebra:
//! "`CMD:` normally includes `ZPL`") and HP's `PCL` are from the facts; the `EPL`,
//! Brother `PT-CBP` and DYMO rules come from public device-id listings and were not
//! checked against a device here.

use crate::Language;
use std::fmt;

/// Long and short spellings of each well-known key, long first.
const MANUFACTURER_KEYS: &[&str] = &["MANUFACTURER", "MFG"];
const MODEL_KEYS: &[&str] = &["MODEL", "MDL"];
const COMMAND_SET_KEYS: &[&str] = &["COMMAND SET", "CMD"];
const CLASS_KEYS: &[&str] = &["CLASS", "CLS"];
const DESCRIPTION_KEYS: &[&str] = &["DESCRIPTION", "DES"];
const SERIAL_KEYS: &[&str] = &["SERIALNUMBER", "SERN", "SN"];

/// Shortest id a length prefix can announce and still hold `MFG:x;MDL:y;` (CUPS uses
/// the same bound to decide that a big-endian length is implausible).
const MIN_PREFIXED_LEN: usize = 14;

/// A parsed IEEE 1284 Device ID.
///
/// Keeps the text (without the length prefix) and its pairs in the order received;
/// lookups try each key's long and short spelling and return the first hit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceId {
    /// The id text as received, without the length prefix (lossily UTF-8).
    raw: String,
    /// `(key, value)` pairs in the order received, both trimmed.
    fields: Vec<(String, String)>,
    /// Whether the length prefix announced more bytes than arrived.
    truncated: bool,
}

impl DeviceId {
    /// Parses an id, with or without the 2-byte length prefix (bytes from USB or usblp,
    /// or text from sysfs). Never fails: garbage gives an id with no fields.
    pub fn parse(input: impl AsRef<[u8]>) -> DeviceId {
        let (body, truncated) = strip_length_prefix(input.as_ref());
        let body = match body.iter().position(|&b| b == 0) {
            Some(nul) => &body[..nul],
            None => body,
        };
        let raw = String::from_utf8_lossy(body).into_owned();
        let fields = parse_fields(&raw, truncated);
        DeviceId {
            raw,
            fields,
            truncated,
        }
    }

    /// The id text as received, without the length prefix.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether nothing usable was found (no `KEY:value` pair).
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Whether the length prefix announced more than arrived (the last pair was dropped).
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Every `(key, value)` pair in the order received.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of `key`, spelled exactly (keys are case-sensitive); the first if the
    /// key repeats.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The first non-empty value under any of `keys`.
    fn any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter()
            .filter_map(|k| self.get(k))
            .find(|v| !v.is_empty())
    }

    /// `MANUFACTURER` / `MFG`.
    pub fn manufacturer(&self) -> Option<&str> {
        self.any(MANUFACTURER_KEYS)
    }

    /// `MODEL` / `MDL`.
    pub fn model(&self) -> Option<&str> {
        self.any(MODEL_KEYS)
    }

    /// `COMMAND SET` / `CMD`, split at commas (empty items dropped).
    pub fn command_set(&self) -> Vec<&str> {
        self.any(COMMAND_SET_KEYS)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `CLASS` / `CLS` (`PRINTER` for printers).
    pub fn class(&self) -> Option<&str> {
        self.any(CLASS_KEYS)
    }

    /// `DESCRIPTION` / `DES`.
    pub fn description(&self) -> Option<&str> {
        self.any(DESCRIPTION_KEYS)
    }

    /// `SERIALNUMBER` / `SERN` / `SN`.
    pub fn serial(&self) -> Option<&str> {
        self.any(SERIAL_KEYS)
    }

    /// The labeld language the device speaks, from its command set (ZPL first, then
    /// EPL2, Brother QL raster, PCL), or from the manufacturer and model for DYMO
    /// LabelWriters, whose raster protocol has no `CMD` name. `None` when nothing
    /// labeld drives is listed (e.g. Brother's host-based `HBP`).
    pub fn language_hint(&self) -> Option<Language> {
        let commands: Vec<String> = self
            .command_set()
            .iter()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let has = |pred: &dyn Fn(&str) -> bool| commands.iter().any(|c| pred(c));
        if has(&|c| c == "ZPL" || c == "ZPL2" || c == "ZPLII" || c == "ZPL II") {
            return Some(Language::Zpl);
        }
        if has(&|c| c == "EPL" || c == "EPL2") {
            return Some(Language::Epl2);
        }
        if has(&|c| c == "PT-CBP") {
            return Some(Language::BrotherQl);
        }
        // PCL 5 (`PCL`, `PCL5`, `PCL5E`, `PCL5C`); PCL XL / PCL 6 is another language.
        if has(&|c| c.starts_with("PCL") && c != "PCLXL" && c != "PCL6" && c != "PCL XL") {
            return Some(Language::Pcl);
        }
        let dymo = self
            .manufacturer()
            .is_some_and(|m| m.eq_ignore_ascii_case("DYMO"));
        let labelwriter = self
            .model()
            .is_some_and(|m| m.to_ascii_lowercase().contains("labelwriter"));
        if dymo && labelwriter {
            return Some(Language::Dymo);
        }
        None
    }
}

impl fmt::Display for DeviceId {
    /// The id text as received.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Removes the 2-byte length prefix when there is one; says whether the prefix
/// announced more bytes than arrived.
///
/// A prefix is present when either of the first two bytes is a control character: an id
/// starts with a key, and no key starts with one, while every length below 0x2000 has a
/// high byte below 0x20 (and, little-endian, a low byte that may be anything but is
/// followed by a high byte below 0x20).
fn strip_length_prefix(bytes: &[u8]) -> (&[u8], bool) {
    let (hi, lo) = match bytes {
        [a, b, ..] => (*a, *b),
        _ => return (bytes, false),
    };
    if hi >= 0x20 && lo >= 0x20 {
        return (bytes, false);
    }
    let available = bytes.len();
    let plausible = |n: usize| (MIN_PREFIXED_LEN..=available).contains(&n);
    let big = usize::from(u16::from_be_bytes([hi, lo]));
    let little = usize::from(u16::from_le_bytes([hi, lo]));
    let (length, truncated) = if big + 2 == available && big >= MIN_PREFIXED_LEN {
        // Exactly two bytes more than announced arrived: the length left out the prefix
        // itself (as the Linux 6.1 printer gadget's does). Keep them.
        (available, false)
    } else if plausible(big) {
        (big, false)
    } else if plausible(little) {
        (little, false)
    } else if big > available {
        // Cut short: keep what arrived, and say so.
        (available, true)
    } else {
        // An implausibly short length (0, 1, …): the device got it wrong; read it all.
        (available, false)
    };
    (bytes.get(2..length).unwrap_or_default(), truncated)
}

/// Splits `KEY:value;` pairs. Drops the last unterminated pair when the text was cut.
fn parse_fields(text: &str, truncated: bool) -> Vec<(String, String)> {
    let mut pieces: Vec<&str> = text.split(';').collect();
    if truncated {
        // The text after the last ';' (possibly all of it) may be cut mid-value.
        pieces.pop();
    }
    pieces
        .into_iter()
        .filter_map(|piece| {
            let (key, value) = piece.split_once(':')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            Some((key.to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefixed(text: &str) -> Vec<u8> {
        let len = u16::try_from(text.len() + 2).unwrap();
        let mut v = len.to_be_bytes().to_vec();
        v.extend_from_slice(text.as_bytes());
        v
    }

    /// printer-langs.md §5.1, the Brother example.
    const BROTHER: &str = "MFG:Brother;CMD:PJL,HBP;MDL:HL-2030 series;CLS:PRINTER;";

    #[test]
    fn brother_example_from_the_facts() {
        let id = DeviceId::parse(BROTHER);
        assert_eq!(id.manufacturer(), Some("Brother"));
        assert_eq!(id.model(), Some("HL-2030 series"));
        assert_eq!(id.command_set(), vec!["PJL", "HBP"]);
        assert_eq!(id.class(), Some("PRINTER"));
        assert_eq!(id.serial(), None);
        // Host-based (HBP) lasers are nothing labeld drives.
        assert_eq!(id.language_hint(), None);
        assert_eq!(id.raw(), BROTHER);
        assert!(!id.is_truncated());
    }

    #[test]
    fn hp_long_keys_and_pcl() {
        // HP's `CMD:MLC,PCL,PML;` (§5.1), with long key spellings around it.
        let id = DeviceId::parse(
            "MANUFACTURER:Hewlett-Packard;COMMAND SET:MLC,PCL,PML;MODEL:HP LaserJet 4050;\
             CLASS:PRINTER;DESCRIPTION:HP LaserJet 4050 Series;SERIALNUMBER:USQX012345;",
        );
        assert_eq!(id.manufacturer(), Some("Hewlett-Packard"));
        assert_eq!(id.model(), Some("HP LaserJet 4050"));
        assert_eq!(id.command_set(), vec!["MLC", "PCL", "PML"]);
        assert_eq!(id.description(), Some("HP LaserJet 4050 Series"));
        assert_eq!(id.serial(), Some("USQX012345"));
        assert_eq!(id.language_hint(), Some(Language::Pcl));
    }

    #[test]
    fn zebra_zpl_with_length_prefix() {
        let text = "MANUFACTURER:Zebra Technologies ;COMMAND SET:ZPL;MODEL:ZTC GK420t;\
                    CLASS:PRINTER;OPTIONS:XML;SN:28J123456789;";
        let id = DeviceId::parse(prefixed(text));
        assert_eq!(id.raw(), text);
        assert_eq!(id.manufacturer(), Some("Zebra Technologies"));
        assert_eq!(id.model(), Some("ZTC GK420t"));
        assert_eq!(id.serial(), Some("28J123456789"));
        assert_eq!(id.get("OPTIONS"), Some("XML"));
        assert_eq!(id.language_hint(), Some(Language::Zpl));
    }

    #[test]
    fn zpl_wins_over_epl_and_epl_alone_is_epl2() {
        assert_eq!(
            DeviceId::parse("MFG:Zebra;CMD:EPL2,ZPL;MDL:GK420d;").language_hint(),
            Some(Language::Zpl)
        );
        assert_eq!(
            DeviceId::parse("MFG:Zebra;CMD:EPL2;MDL:LP 2844;").language_hint(),
            Some(Language::Epl2)
        );
        assert_eq!(
            DeviceId::parse("MFG:Brother;CMD:PT-CBP;MDL:QL-700;CLS:PRINTER;").language_hint(),
            Some(Language::BrotherQl)
        );
        assert_eq!(
            DeviceId::parse("MFG:DYMO;CMD: ;MDL:LabelWriter 450;CLS:PRINTER;").language_hint(),
            Some(Language::Dymo)
        );
        assert_eq!(
            DeviceId::parse("MFG:HP;CMD:PCLXL,POSTSCRIPT;MDL:x;").language_hint(),
            None
        );
    }

    #[test]
    fn keys_are_case_sensitive_and_long_form_first() {
        let id = DeviceId::parse("mfg:lower;MDL:M;MFG:Upper;MANUFACTURER:Long;");
        assert_eq!(id.manufacturer(), Some("Long"));
        assert_eq!(id.get("mfg"), Some("lower"));
        assert_eq!(id.get("Mfg"), None);
    }

    #[test]
    fn the_prefix_counts_itself_and_junk_after_it_is_ignored() {
        let mut bytes = prefixed("MFG:A;MDL:B;CMD:ZPL;");
        bytes.extend_from_slice(b"JUNK:after;\0\0\0");
        let id = DeviceId::parse(&bytes);
        assert_eq!(id.raw(), "MFG:A;MDL:B;CMD:ZPL;");
        assert_eq!(id.get("JUNK"), None);
    }

    #[test]
    fn little_endian_prefix_is_accepted() {
        let text = "MFG:A;MDL:B;CMD:ZPL;";
        let len = u16::try_from(text.len() + 2).unwrap();
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let id = DeviceId::parse(&bytes);
        assert_eq!(id.model(), Some("B"));
        assert!(!id.is_truncated());
    }

    #[test]
    fn a_length_that_leaves_out_the_prefix_keeps_the_last_two_bytes() {
        let text = "MFG:A;MDL:B;CMD:ZPL;SN:1234;";
        let mut bytes = u16::try_from(text.len()).unwrap().to_be_bytes().to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let id = DeviceId::parse(&bytes);
        assert_eq!(id.raw(), text);
        assert_eq!(id.serial(), Some("1234"));
    }

    #[test]
    fn truncated_reply_drops_the_cut_pair() {
        // The prefix announces the whole Brother id; only part of it arrived.
        let full = prefixed(BROTHER);
        let cut = &full[..2 + "MFG:Brother;CMD:PJL,HBP;MDL:HL-20".len()];
        let id = DeviceId::parse(cut);
        assert!(id.is_truncated());
        assert_eq!(id.manufacturer(), Some("Brother"));
        assert_eq!(id.command_set(), vec!["PJL", "HBP"]);
        assert_eq!(id.model(), None, "a cut model must not be reported");
    }

    #[test]
    fn missing_final_semicolon_without_prefix_is_accepted() {
        let id = DeviceId::parse("MFG:Zebra;MDL:ZD410\r\n");
        assert_eq!(id.model(), Some("ZD410"));
    }

    #[test]
    fn nul_padding_and_whitespace() {
        let id = DeviceId::parse(b"\r\n MFG : Zebra ; MDL:ZD620 ;\0\0garbage");
        assert_eq!(id.manufacturer(), Some("Zebra"));
        assert_eq!(id.model(), Some("ZD620"));
        assert_eq!(id.fields().count(), 2);
    }

    #[test]
    fn garbage_gives_an_empty_id() {
        for input in [
            &b""[..],
            b"\0",
            b"\x00\x01",
            b"\xff\xfe\xfd",
            b";;;:::,,,",
            b"no pairs here",
            b"\x00\x05:;",
            b":value without key;",
        ] {
            let id = DeviceId::parse(input);
            assert!(id.is_empty(), "{input:?} gave {id:?}");
            assert_eq!(id.language_hint(), None);
            assert!(id.command_set().is_empty());
        }
    }

    #[test]
    fn empty_values_fall_through_to_the_other_spelling() {
        let id = DeviceId::parse("MODEL:;MDL:QL-800;");
        assert_eq!(id.model(), Some("QL-800"));
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let id = DeviceId::parse(&bytes);
                let _ = (id.manufacturer(), id.model(), id.serial(), id.class());
                let _ = (id.command_set(), id.language_hint(), id.to_string());
            }

            #[test]
            fn round_trips_generated_pairs(
                pairs in proptest::collection::vec(
                    ("[A-Z][A-Z ]{0,11}[A-Z]", "[A-Za-z0-9 ._-]{0,20}"), 0..8),
                with_prefix in any::<bool>(),
            ) {
                let text: String = pairs.iter().map(|(k, v)| format!("{k}:{v};")).collect();
                let bytes = if with_prefix && text.len() + 2 >= MIN_PREFIXED_LEN {
                    let mut b = u16::try_from(text.len() + 2).unwrap().to_be_bytes().to_vec();
                    b.extend_from_slice(text.as_bytes());
                    b
                } else {
                    text.clone().into_bytes()
                };
                let id = DeviceId::parse(&bytes);
                let got: Vec<(String, String)> =
                    id.fields().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
                let want: Vec<(String, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect();
                prop_assert_eq!(got, want);
            }
        }
    }
}
