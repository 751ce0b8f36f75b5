//! Code 128, tray and container barcodes through an independent test decoder.
//!
//! The decoder here shares no code or table with `labeld::encode::code128`. It reads the
//! module widths as a string of modules, cuts it into 11-module characters, looks each
//! one up in its own table of module strings (taken from zint 2.11.1 `--dump` output,
//! not from the encoder's width table), checks the modulo-103 check character and the
//! stop, and runs the code-set state machine of ISO/IEC 15417 Table 1 back to the
//! characters, FNC1 included. On top of it: fixed vectors (zint's own module strings
//! and hand-derived worked examples), an exhaustive shortest-encoding search, proptest
//! round trips over random ASCII + FNC1 input, and tray and container round trips.

use std::collections::{HashSet, VecDeque};

use labeld::encode::code128::{
    encode, encode_str, encode_with, Code128, Code128Char, CodeSet, CodeSetMode,
};
use labeld::encode::container::{ContainerBarcode, ContainerEncoding, SerialPadding};
use labeld::encode::tray::{TrayBarcode, TrayFields};
use proptest::prelude::*;
use Code128Char::{Ascii, Fnc1};

// ---------------------------------------------------------------------------------------
// The independent decoder
// ---------------------------------------------------------------------------------------

/// Module strings (1 = bar) of the 107 symbol characters, by value. Collected from zint
/// 2.11.1 (Debian `zint` package) `--dump` output of crafted symbols that between them
/// use every value; value 106 is the 13-module stop.
#[rustfmt::skip]
const MODULES: [&str; 107] = [
    "11011001100", "11001101100", "11001100110", "10010011000", "10010001100", // 0-4
    "10001001100", "10011001000", "10011000100", "10001100100", "11001001000", // 5-9
    "11001000100", "11000100100", "10110011100", "10011011100", "10011001110", // 10-14
    "10111001100", "10011101100", "10011100110", "11001110010", "11001011100", // 15-19
    "11001001110", "11011100100", "11001110100", "11101101110", "11101001100", // 20-24
    "11100101100", "11100100110", "11101100100", "11100110100", "11100110010", // 25-29
    "11011011000", "11011000110", "11000110110", "10100011000", "10001011000", // 30-34
    "10001000110", "10110001000", "10001101000", "10001100010", "11010001000", // 35-39
    "11000101000", "11000100010", "10110111000", "10110001110", "10001101110", // 40-44
    "10111011000", "10111000110", "10001110110", "11101110110", "11010001110", // 45-49
    "11000101110", "11011101000", "11011100010", "11011101110", "11101011000", // 50-54
    "11101000110", "11100010110", "11101101000", "11101100010", "11100011010", // 55-59
    "11101111010", "11001000010", "11110001010", "10100110000", "10100001100", // 60-64
    "10010110000", "10010000110", "10000101100", "10000100110", "10110010000", // 65-69
    "10110000100", "10011010000", "10011000010", "10000110100", "10000110010", // 70-74
    "11000010010", "11001010000", "11110111010", "11000010100", "10001111010", // 75-79
    "10100111100", "10010111100", "10010011110", "10111100100", "10011110100", // 80-84
    "10011110010", "11110100100", "11110010100", "11110010010", "11011011110", // 85-89
    "11011110110", "11110110110", "10101111000", "10100011110", "10001011110", // 90-94
    "10111101000", "10111100010", "11110101000", "11110100010", "10111011110", // 95-99
    "10111101110", "11101011110", "11110101110", "11010000100", "11010010000", // 100-104
    "11010011100", "1100011101011", // 105-106
];

/// The decoder's code-set state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Set {
    A,
    B,
    C,
}

/// Decoder state before a data symbol: the active set and whether a Shift is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct State {
    set: Set,
    shifted: bool,
}

/// A fully decoded symbol.
#[derive(Debug)]
struct Decoded {
    /// Every symbol value, start to stop.
    values: Vec<u8>,
    /// The characters the data values stand for.
    chars: Vec<Code128Char>,
}

/// The start state a start value selects.
fn start_state(value: u8) -> Result<State, String> {
    let set = match value {
        103 => Set::A,
        104 => Set::B,
        105 => Set::C,
        v => return Err(format!("first symbol {v} is not a start character")),
    };
    Ok(State {
        set,
        shifted: false,
    })
}

/// One data value: the next state and the characters it produced.
fn step(state: State, v: u8) -> Result<(State, Vec<Code128Char>), String> {
    let plain = State {
        set: state.set,
        shifted: false,
    };
    let read_in = match (state.set, state.shifted) {
        (Set::A, true) => Set::B,
        (Set::B, true) => Set::A,
        (Set::C, true) => return Err("shift pending in set C".into()),
        (set, false) => set,
    };
    let to = |set| {
        if state.shifted {
            Err(format!("code-set change {v} right after Shift"))
        } else {
            Ok((
                State {
                    set,
                    shifted: false,
                },
                vec![],
            ))
        }
    };
    match (read_in, v) {
        (_, 102) => Ok((plain, vec![Fnc1])),
        (Set::C, 0..=99) => Ok((plain, vec![Ascii(b'0' + v / 10), Ascii(b'0' + v % 10)])),
        (Set::C, 100) | (Set::A, 100) => to(Set::B),
        (Set::C, 101) | (Set::B, 101) => to(Set::A),
        (Set::A, 99) | (Set::B, 99) => to(Set::C),
        (Set::A, 0..=63) => Ok((plain, vec![Ascii(v + 32)])),
        (Set::A, 64..=95) => Ok((plain, vec![Ascii(v - 64)])),
        (Set::B, 0..=95) => Ok((plain, vec![Ascii(v + 32)])),
        (Set::A | Set::B, 98) if !state.shifted => Ok((
            State {
                set: state.set,
                shifted: true,
            },
            vec![],
        )),
        (set, v) => Err(format!("value {v} in set {set:?} is not supported here")),
    }
}

/// The characters a sequence of data values stands for.
fn decode_values(start: u8, data: &[u8]) -> Result<Vec<Code128Char>, String> {
    let mut state = start_state(start)?;
    let mut out = Vec::new();
    for &v in data {
        let (next, chars) = step(state, v)?;
        state = next;
        out.extend(chars);
    }
    if state.shifted {
        return Err("symbol ends on a Shift".into());
    }
    Ok(out)
}

/// Module widths → module string, written here rather than taken from the encoder.
fn modules_of(widths: &[u8]) -> String {
    let mut s = String::new();
    for (i, &w) in widths.iter().enumerate() {
        let c = if i % 2 == 0 { "1" } else { "0" };
        s.push_str(&c.repeat(usize::from(w)));
    }
    s
}

/// Decode module widths back to symbol values and characters.
fn decode(widths: &[u8]) -> Result<Decoded, String> {
    let m = modules_of(widths);
    if m.len() < 13 + 3 * 11 || (m.len() - 13) % 11 != 0 {
        return Err(format!("{} modules is not 11k + 13", m.len()));
    }
    let (body, stop) = m.split_at(m.len() - 13);
    if stop != MODULES[106] {
        return Err(format!("bad stop {stop}"));
    }
    let mut values = Vec::new();
    for k in 0..body.len() / 11 {
        let chunk = &body[11 * k..11 * k + 11];
        let v = MODULES[..106]
            .iter()
            .position(|&p| p == chunk)
            .ok_or_else(|| format!("character {k} {chunk} is not a code 128 pattern"))?;
        values.push(v as u8);
    }
    let (&check, rest) = values.split_last().ok_or("no characters")?;
    let (&start, data) = rest.split_first().ok_or("no start")?;
    let sum: u32 = data
        .iter()
        .zip(1u32..)
        .map(|(&v, i)| i * u32::from(v))
        .sum::<u32>()
        + u32::from(start);
    if sum % 103 != u32::from(check) {
        return Err(format!("check {check} but values give {}", sum % 103));
    }
    let chars = decode_values(start, data)?;
    values.push(106);
    Ok(Decoded { values, chars })
}

/// Decode a symbol, checking it against the encoder's own bookkeeping on the way.
fn decode_symbol(s: &Code128) -> Decoded {
    let d = decode(s.widths()).unwrap_or_else(|e| panic!("decode failed: {e}"));
    assert_eq!(
        d.values,
        s.values(),
        "decoded values differ from the encoder's"
    );
    assert_eq!(modules_of(s.widths()), s.module_string());
    assert_eq!(s.modules(), s.module_string().len());
    assert_eq!(s.modules(), 11 * (s.values().len() - 1) + 13);
    d
}

/// The fewest data symbol characters any symbol needs for `input`: a breadth-first
/// search over every value 0–102 at every step, run through the decoder's state
/// machine. A state is (set, Shift pending, characters matched); a value whose output
/// does not continue the input is dropped.
fn brute_force_shortest(input: &[Code128Char]) -> usize {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::new();
    for start in [103, 104, 105] {
        if let Ok(state) = start_state(start) {
            queue.push_back((state, 0usize, 0usize));
        }
    }
    while let Some((state, pos, cost)) = queue.pop_front() {
        if pos == input.len() && !state.shifted {
            return cost;
        }
        if !seen.insert((state, pos)) {
            continue;
        }
        for v in 0..=102u8 {
            if let Ok((next, out)) = step(state, v) {
                if input[pos..].starts_with(&out) {
                    queue.push_back((next, pos + out.len(), cost + 1));
                }
            }
        }
    }
    usize::MAX
}

fn text(s: &str) -> Vec<Code128Char> {
    s.bytes().map(Ascii).collect()
}

fn with_fnc1(s: &str) -> Vec<Code128Char> {
    std::iter::once(Fnc1).chain(text(s)).collect()
}

/// zint's `--dump` (hex, a trailing half byte allowed) → the first `len` modules; the
/// bits after them must be zero padding.
fn zint_modules(dump: &str, len: usize) -> String {
    let bits: String = dump
        .split_whitespace()
        .map(|h| {
            let v = u32::from_str_radix(h, 16).unwrap_or_else(|e| panic!("{h}: {e}"));
            format!("{v:0w$b}", w = 4 * h.len())
        })
        .collect();
    assert!(
        bits.len() >= len && bits.len() - len < 8,
        "dump has {} bits",
        bits.len()
    );
    assert!(bits[len..].chars().all(|c| c == '0'));
    bits[..len].to_string()
}

// ---------------------------------------------------------------------------------------
// Fixed vectors
// ---------------------------------------------------------------------------------------

#[test]
fn decoder_rejects_damage() {
    // The tests must be able to fail: a damaged symbol never decodes.
    let s = encode_str("Wikipedia").unwrap_or_else(|e| panic!("{e}"));
    let mut widths = s.widths().to_vec();
    widths.swap(6, 7); // first data character's bar and space
    assert!(decode(&widths).is_err());
    let mut widths = s.widths().to_vec();
    let n = widths.len();
    widths[n - 2] += 1; // stop
    assert!(decode(&widths).is_err());
    // A different but valid data character: the check character catches it.
    let mut widths = s.widths().to_vec();
    widths[6..12].copy_from_slice(&[2, 2, 2, 1, 2, 2]); // value 1 in place of 'W' (55)
    assert_eq!(
        decode(&widths).err(),
        Some("check 88 but values give 34".to_string())
    );
}

#[test]
fn zint_module_strings() {
    // (zint arguments, input, expected module count, zint 2.11.1 `--dump` output). zint
    // chooses the same code sets as labeld for these; its module strings must match ours
    // bit for bit.
    let cases: &[(&str, Vec<Code128Char>, usize, &str)] = &[
        // 0: -b 20 -d 'Wikipedia'
        ("code128", text("Wikipedia"), 134, "D2 1D 1A 1A 61 28 69 4F 2C 84 26 86 92 C3 C9 63 AC"),
        // 1: -b 16 --gs1 -d '[01]09501101530003'
        ("gs1-128", with_fnc1("0109501101530003"), 134, "D3 9E BB 36 64 8C 5D 89 33 66 EE D9 92 62 68 63 AC"),
        // 2: -b 16 --gs1 --gs1nocheck -d '[99]M123456000000000001' (the shortest IMcb)
        (
            "gs1-128",
            with_fnc1("99M123456000000000001"),
            189,
            "D2 1E BB 96 72 CB B1 77 AC E4 58 E2 DB 33 66 6C CD 99 B3 33 67 64 C7 58",
        ),
        // 3: -b 20 --esc -d 'a\tb' (Shift)
        ("code128", text("a\tb"), 79, "D2 12 C3 D1 43 49 0D D3 31 D6"),
        // 4: -b 20 --esc -d 'a\t\t\tb' (Code A, then Shift back)
        ("code128", text("a\t\t\tb"), 112, "D2 12 C3 AF 43 48 69 0D 3D 14 86 D8 D8 EB"),
        // 5: -b 20 --esc -d 'HELLO\x7f\0'
        ("code128", text("HELLO\x7f\0"), 123, "D2 18 A2 34 46 E8 DD 1D AF 47 A2 A1 9D A3 1D 6"),
        // 6: -b 20 --esc, ASCII 0-31 (set A values 64-95)
        (
            "code128",
            (0..32).map(Ascii).collect(),
            387,
            "D0 94 32 58 48 68 59 09 AC 85 84 9A 13 0A 1A 43 2C 25 94 3D D6 14 8F 54 F2 5E 49 EB C9 3D 27 97 A4 F2 9E 4B 6F 6F 6F 6D 5E 28 F4 5E BD 19 9B 1D 6",
        ),
    ];
    for (i, (kind, input, modules, dump)) in cases.iter().enumerate() {
        let s = encode(input).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(s.modules(), *modules, "case {i} ({kind})");
        assert_eq!(
            s.module_string(),
            zint_modules(dump, *modules),
            "case {i} ({kind})"
        );
        assert_eq!(decode_symbol(&s).chars, *input, "case {i}");
    }
}

#[test]
fn worked_examples() {
    // (input, expected symbol values start..stop), each derived by hand from ISO/IEC
    // 15417 Table 1 and the check rule (start + Σ position × value) mod 103.
    let cases: &[(Vec<Code128Char>, &[u8])] = &[
        // 0: GS1-128 "(01)09501101530003", GTIN 09501101530003 (GS1's example GTIN
        //    950110153000 + check digit 3). All digits: Start C (105), FNC1 (102), then
        //    pairs 01 09 50 11 01 53 00 03.
        //    Check: 105 + 1·102 + 2·1 + 3·9 + 4·50 + 5·11 + 6·1 + 7·53 + 8·0 + 9·3
        //         = 105 + 102 + 2 + 27 + 200 + 55 + 6 + 371 + 0 + 27 = 895
        //         = 8·103 + 71 → 71. Stop 106.
        (
            with_fnc1("0109501101530003"),
            &[105, 102, 1, 9, 50, 11, 1, 53, 0, 3, 71, 106],
        ),
        // 1: USPS GS1-128 routing barcode (DMM 204), AI 420 + ZIP 12345: Start C, FNC1,
        //    42 01 23 45. Check: 105 + 102 + 2·42 + 3·1 + 4·23 + 5·45 = 611 = 5·103 + 96.
        (with_fnc1("42012345"), &[105, 102, 42, 1, 23, 45, 96, 106]),
        // 2: "Wikipedia" in set B (value = ASCII - 32): W 55, i 73, k 75, p 80, e 69,
        //    d 68, a 65. Check: 104 + 55 + 2·73 + 3·75 + 4·73 + 5·80 + 6·69 + 7·68 + 8·73
        //    + 9·65 = 3281 = 31·103 + 88.
        (
            text("Wikipedia"),
            &[104, 55, 73, 75, 73, 80, 69, 68, 73, 65, 88, 106],
        ),
        // 3: USPS-L-3216A tray example (imb-facts.md §7.2): Start C and 12 pairs.
        //    Check: 105 + 12 + 2·34 + 3·56 + 4·78 + 5·11 + 6·23 + 7·45 + 8·61 + 9·23
        //    + 10·12 + 11·34 + 12·51 = 105 + 12 + 68 + 168 + 312 + 55 + 138 + 315 + 488
        //    + 207 + 120 + 374 + 612 = 2974 = 28·103 + 90 → 90.
        (
            text("123456781123456123123451"),
            &[105, 12, 34, 56, 78, 11, 23, 45, 61, 23, 12, 34, 51, 90, 106],
        ),
    ];
    for (i, (input, values)) in cases.iter().enumerate() {
        let s = encode(input).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(s.values(), *values, "case {i}");
        let d = decode_symbol(&s);
        assert_eq!(d.chars, *input, "case {i}");
    }
}

#[test]
fn shortest_is_minimal_for_every_short_input() {
    // Every input of length 1-5 over an alphabet that exercises each set, Shift, odd and
    // even digit runs and FNC1: 6 + 36 + ... + 7776 = 9330 inputs.
    let alphabet = [
        Ascii(b'1'),
        Ascii(b'2'),
        Ascii(b'A'),
        Ascii(b'a'),
        Ascii(b'\t'),
        Fnc1,
    ];
    let mut inputs: Vec<Vec<Code128Char>> = vec![vec![]];
    let mut checked = 0;
    for _ in 0..5 {
        inputs = inputs
            .iter()
            .flat_map(|p| alphabet.iter().map(move |&c| [p.as_slice(), &[c]].concat()))
            .collect();
        for input in &inputs {
            let s = encode(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(decode_symbol(&s).chars, *input);
            assert_eq!(
                s.data_values().len(),
                brute_force_shortest(input),
                "{input:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 9330);
}

#[test]
fn brute_force_search_finds_known_minima() {
    // The search itself, on cases counted by hand.
    let cases: &[(Vec<Code128Char>, usize)] = &[
        // 0: one set C pair
        (text("12"), 1),
        // 1: three digits: B '1' + Code C + '23', or '1' '2' '3' in B: 3
        (text("123"), 3),
        // 2: lower case + TAB + lower case: 'a' Shift TAB 'b'
        (text("a\tb"), 4),
        // 3: FNC1 + 4 digits: FNC1 12 34
        (with_fnc1("1234"), 3),
    ];
    for (i, (input, n)) in cases.iter().enumerate() {
        assert_eq!(brute_force_shortest(input), *n, "case {i}");
    }
}

#[test]
fn tray_l3216a_round_trip() {
    let t = TrayBarcode::parse("123456781123456123123451").unwrap_or_else(|e| panic!("{e}"));
    let d = decode_symbol(&t.symbol());
    assert_eq!(d.chars, text(t.digits()));
    assert_eq!(t.symbol().modules(), 167);
}

#[test]
fn container_round_trips_both_encodings() {
    let c = ContainerBarcode::new("900066875", "EMA000051").unwrap_or_else(|e| panic!("{e}"));
    let input = with_fnc1("99M900066875EMA000051");
    // Set B: Start B, FNC1, 21 characters, check: 24 × 11 + 13 = 277 modules.
    // Shortest: FNC1 '9' '9' 'M' '9', Code C, 00 06 68 75, Code B, 'E' 'M' 'A', Code C,
    // 00 00 51 = 18 data characters: 20 × 11 + 13 = 233 modules.
    for (encoding, data, modules) in [
        (ContainerEncoding::SetB, 22, 277),
        (ContainerEncoding::Shortest, 18, 233),
    ] {
        let s = c.symbol(encoding);
        assert_eq!(
            (s.data_values().len(), s.modules()),
            (data, modules),
            "{encoding:?}"
        );
        assert_eq!(decode_symbol(&s).chars, input, "{encoding:?}");
    }
    assert_eq!(brute_force_shortest(&input), 18);
}

// ---------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------

/// Characters weighted towards the cases that change code sets.
fn any_char() -> impl Strategy<Value = Code128Char> {
    prop_oneof![
        4 => (b'0'..=b'9').prop_map(Ascii),
        2 => (0u8..32).prop_map(Ascii),
        2 => (96u8..128).prop_map(Ascii),
        2 => (32u8..96).prop_map(Ascii),
        1 => Just(Fnc1),
    ]
}

fn serial_strategy(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof![b'0'..=b'9', b'A'..=b'Z'], 1..=max)
        .prop_map(|b| b.into_iter().map(char::from).collect())
}

fn mailer_id_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u32..900_000).prop_map(|m| format!("{m:06}")),
        (900_000_000u32..1_000_000_000).prop_map(|m| m.to_string()),
    ]
}

proptest! {
    #[test]
    fn shortest_round_trips(input in proptest::collection::vec(any_char(), 1..=80)) {
        let s = encode(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(decode_symbol(&s).chars, input);
    }

    #[test]
    fn shortest_matches_brute_force(input in proptest::collection::vec(any_char(), 1..=10)) {
        let s = encode(&input).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(s.data_values().len(), brute_force_shortest(&input));
    }

    #[test]
    fn forced_sets_round_trip_or_name_the_misfit(
        input in proptest::collection::vec(any_char(), 1..=40),
        set in prop_oneof![Just(CodeSet::A), Just(CodeSet::B), Just(CodeSet::C)],
    ) {
        let fits = |c: &Code128Char| match (set, *c) {
            (_, Fnc1) => true,
            (CodeSet::A, Ascii(b)) => b < 96,
            (CodeSet::B, Ascii(b)) => b >= 32,
            (_, Ascii(b)) => b.is_ascii_digit(),
        };
        match encode_with(&input, CodeSetMode::Only(set)) {
            Ok(s) => {
                prop_assert!(input.iter().all(fits));
                prop_assert_eq!(s.start_value(), set.start_value());
                // No switch and no Shift: values 98-101 never occur in the data.
                prop_assert!(s.data_values().iter().all(|v| !(98..=101).contains(v)));
                prop_assert_eq!(decode_symbol(&s).chars, input);
            }
            Err(e) => prop_assert!(
                !input.iter().all(fits) || set == CodeSet::C,
                "{:?} refused: {}", input, e
            ),
        }
    }

    #[test]
    fn encode_str_never_panics(s in "\\PC{0,140}") {
        if let Ok(sym) = encode_str(&s) {
            prop_assert_eq!(decode_symbol(&sym).chars, text(&s));
        }
    }

    #[test]
    fn tray_round_trips(digits in "[0-9]{24}") {
        let t = TrayBarcode::parse(&digits).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let s = t.symbol();
        prop_assert_eq!(s.modules(), 167);
        prop_assert_eq!(decode_symbol(&s).chars, text(&digits));
        let fields = TrayFields {
            zip: t.zip(),
            cin: t.cin(),
            processing_code: t.processing_code(),
            mailer_id: t.mailer_id(),
            serial: t.serial(),
            label_type: t.label_type(),
        };
        prop_assert_eq!(TrayBarcode::from_fields(&fields), Ok(t.clone()));
        prop_assert_eq!(TrayBarcode::parse(&t.grouped()), Ok(t));
    }

    #[test]
    fn tray_parse_never_panics(s in "\\PC{0,40}") {
        let _ = TrayBarcode::parse(&s);
    }

    #[test]
    fn container_round_trips(
        (mid, serial) in mailer_id_strategy()
            .prop_flat_map(|m| { let max = 18 - m.len(); (Just(m), serial_strategy(max)) }),
        dashes in any::<bool>(),
    ) {
        let padding = if dashes { SerialPadding::Dashes } else { SerialPadding::Zeros };
        let c = ContainerBarcode::with_padding(&mid, &serial, padding)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(c.data().len(), 21);
        prop_assert_eq!(c.mailer_id(), mid.as_str());
        prop_assert!(c.serial().ends_with(serial.as_str()));
        let b = c.symbol(ContainerEncoding::SetB);
        prop_assert_eq!(b.modules(), 277);
        let short = c.symbol(ContainerEncoding::Shortest);
        prop_assert!(short.modules() <= 277);
        for s in [&b, &short] {
            prop_assert_eq!(decode_symbol(s).chars, with_fnc1(c.data()));
        }
        prop_assert_eq!(ContainerBarcode::parse(c.data()), Ok(c.clone()));
        prop_assert_eq!(ContainerBarcode::parse(&c.human_readable()), Ok(c));
    }

    #[test]
    fn container_parse_never_panics(s in "\\PC{0,30}") {
        if let Ok(c) = ContainerBarcode::parse(&s) {
            prop_assert_eq!(decode_symbol(&c.symbol(ContainerEncoding::SetB)).chars, with_fnc1(c.data()));
        }
    }
}
