//! The IMb encoder and decoder against USPS's own data: the 10,000-case encoder
//! test file and the 20 step-by-step vectors (`../shared/imb`,
//! `../shared/reference/imb-test-vectors.csv`).

use crate::support::read_shared;
use labeld::encode::imb::{self, Routing, Tracking};

/// Every valid row encodes to USPS's bars and decodes back; every invalid row is
/// rejected with USPS's return code.
#[test]
fn usps_10000_case_file() {
    let Some(text) = read_shared("imb/uspsIMbEncoderTestCases.csv") else {
        return;
    };
    let (mut valid, mut invalid) = (0, 0);
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.splitn(6, ',').collect();
        assert_eq!(cols.len(), 6, "malformed row {line:?}");
        let (id, tracking, routing, bars, code) = (cols[0], cols[1], cols[2], cols[3], cols[4]);
        let result = imb::encode_str(tracking, routing);
        if code == "00" {
            let symbol = result.unwrap_or_else(|e| panic!("case {id}: rejected valid input: {e}"));
            assert_eq!(symbol.letters_string(), bars, "case {id}");
            let decoded = imb::decode_letters(bars)
                .unwrap_or_else(|e| panic!("case {id}: decode failed: {e}"));
            assert_eq!(decoded.tracking.as_str(), tracking.trim(), "case {id}");
            assert_eq!(decoded.routing.as_str(), routing.trim(), "case {id}");
            valid += 1;
        } else {
            let err = result
                .err()
                .unwrap_or_else(|| panic!("case {id}: accepted invalid input"));
            assert_eq!(
                format!("{:02}", err.usps_class().code()),
                code,
                "case {id}: {err}"
            );
            assert!(
                err.to_string().starts_with(&format!("error {code}: ")),
                "case {id}"
            );
            invalid += 1;
        }
    }
    assert_eq!((valid, invalid), (8128, 1872));
}

/// The 20 vectors with their binary value, FCS and codewords (facts §5.1).
#[test]
fn step_vectors() {
    let Some(text) = read_shared("reference/imb-test-vectors.csv") else {
        return;
    };
    let mut rows = 0;
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.splitn(7, ',').collect();
        let (tracking, routing, bars) = (cols[0], cols[1], cols[2]);
        let binary = u128::from_str_radix(cols[3].trim_start_matches("0x"), 16).unwrap();
        let fcs = u16::from_str_radix(cols[4].trim_start_matches("0x"), 16).unwrap();
        let codewords: Vec<u16> = cols[5].split(' ').map(|c| c.parse().unwrap()).collect();
        let symbol = imb::encode(
            &Tracking::parse(tracking).unwrap(),
            &Routing::parse(routing).unwrap(),
        );
        assert_eq!(symbol.steps().binary, binary, "{line}");
        assert_eq!(symbol.steps().fcs, fcs, "{line}");
        assert_eq!(symbol.steps().codewords.to_vec(), codewords, "{line}");
        assert_eq!(symbol.letters_string(), bars, "{line}");
        rows += 1;
    }
    assert_eq!(rows, 20);
}
