//! Property tests of the IMb encoder and decoder over the whole valid field space.

use labeld::encode::imb::{self, Bar, Routing, Tracking};
use proptest::prelude::*;

/// Any valid tracking code: BI second digit 0–4, the other 19 digits free.
fn tracking() -> impl Strategy<Value = Tracking> {
    (0u8..10, 0u8..5, proptest::collection::vec(0u8..10, 18)).prop_map(|(d1, d2, rest)| {
        let text: String = [d1, d2]
            .iter()
            .chain(rest.iter())
            .map(|d| char::from(b'0' + d))
            .collect();
        Tracking::parse(&text).expect("strategy builds valid tracking codes")
    })
}

/// Any routing code of 0, 5, 9 or 11 digits, leading zeros included.
fn routing() -> impl Strategy<Value = Routing> {
    prop_oneof![Just(0usize), Just(5), Just(9), Just(11)]
        .prop_flat_map(|len| proptest::collection::vec(0u8..10, len))
        .prop_map(|digits| {
            let text: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
            Routing::parse(&text).expect("strategy builds valid routing codes")
        })
}

const STATES: [Bar; 4] = [Bar::Tracker, Bar::Ascender, Bar::Descender, Bar::Full];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_inverts_encode(t in tracking(), r in routing()) {
        let symbol = imb::encode(&t, &r);
        let decoded = imb::decode(&symbol.bars()).unwrap();
        prop_assert_eq!(decoded.tracking, t);
        prop_assert_eq!(decoded.routing, r);
        let from_letters = imb::decode_letters(&symbol.letters_string()).unwrap();
        prop_assert_eq!(from_letters.tracking, t);
    }

    /// Every single-bar damage (each of the 65 bars changed to each of its 3 other
    /// states) is reported, never decoded to a different code.
    #[test]
    fn single_bar_damage_is_detected(t in tracking(), r in routing()) {
        let symbol = imb::encode(&t, &r);
        for bar in 0..imb::BAR_COUNT {
            for state in STATES {
                if state == symbol.bars()[bar] {
                    continue;
                }
                let mut damaged = symbol.bars();
                damaged[bar] = state;
                if let Ok(decoded) = imb::decode(&damaged) {
                    prop_assert!(false, "bar {} → {:?} decoded as {:?}", bar + 1, state, decoded);
                }
            }
        }
    }

    /// Any 65 bars at all: decoding never panics, and what decodes re-encodes to the
    /// same bars.
    #[test]
    fn arbitrary_bars_never_decode_wrongly(states in proptest::collection::vec(0usize..4, 65)) {
        let mut bars = [Bar::Tracker; 65];
        for (bar, s) in bars.iter_mut().zip(states) {
            *bar = STATES[s];
        }
        if let Ok(decoded) = imb::decode(&bars) {
            prop_assert_eq!(imb::encode(&decoded.tracking, &decoded.routing).bars(), bars);
        }
    }
}

proptest! {
    /// Any text at all as tracking and routing: a symbol or a typed error with a USPS
    /// class, never a panic; and the message names that class.
    #[test]
    fn arbitrary_text_gets_a_symbol_or_a_classed_error(tracking in "\\PC{0,30}", routing in "\\PC{0,14}") {
        match imb::encode_str(&tracking, &routing) {
            Ok(symbol) => prop_assert_eq!(symbol.letters().len(), 65),
            Err(err) => {
                let prefix = format!("error {:02}: ", err.usps_class().code());
                prop_assert!(err.to_string().starts_with(&prefix), "{}", err);
            }
        }
    }

    /// Any text as letters: decoding never panics.
    #[test]
    fn arbitrary_letters_never_panic(letters in "[ADFTadft]{60,70}|\\PC{0,80}") {
        let _ = imb::decode_letters(&letters);
    }
}
