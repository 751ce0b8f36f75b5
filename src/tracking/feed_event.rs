//! A stored scan back into the event object an IV-MTR data feed carries
//! (`../shared/reference/iv-tracking.md` §3: camelCase piece-event fields).
//!
//! `labelctl tracking import` reads a feed file and checks it whole with
//! [`super::feed::parse_feed_body`] before anything is sent; it then hands the checked
//! scans to labeld as `tracking_import` requests, one event object per scan, built
//! here. labeld reads them with [`RawScan::from_json`] and [`Scan::from_raw`] like
//! any feed, so the object must carry exactly what those need to give the scan back:
//!
//! - `imbTrackingCode` (20 digits), `routingCodeImbMatchingPortion` (only when the
//!   scan had a routing code) and `imb` (the two together);
//! - `scanDatetime`: the time text exactly as USPS sent it, so the daemon infers the
//!   same zone from the same facility state;
//! - every other field the scan has, under the feed's name; fields the scan lacks are
//!   left out rather than sent as `null`.
//!
//! The source (import) is not a feed field: the daemon sets it.
//!
//! [`RawScan::from_json`]: super::scan::RawScan::from_json
//! [`Scan::from_raw`]: super::scan::Scan::from_raw

use serde_json::{Map, Value};

use super::scan::Scan;

/// The feed event object for `scan`: its camelCase fields, absent ones left out.
/// `Scan::from_raw(RawScan::from_json(&feed_event(s))?, s.source)` gives `s` back for
/// any scan `Scan::from_raw` made.
pub fn feed_event(scan: &Scan) -> Map<String, Value> {
    let mut event = Map::new();
    let mut put = |name: &str, value: &str| {
        event.insert(name.to_owned(), Value::String(value.to_owned()));
    };
    put("imbTrackingCode", &scan.tracking);
    if !scan.routing.is_empty() {
        put("routingCodeImbMatchingPortion", &scan.routing);
    }
    put("imb", &format!("{}{}", scan.tracking, scan.routing));
    put("scanDatetime", &scan.scanned_at.text);
    put("scanEventCode", &scan.event_code);
    let optional = [
        ("handlingEventType", &scan.handling_event_type),
        (
            "handlingEventTypeDescription",
            &scan.handling_event_description,
        ),
        ("mailPhase", &scan.mail_phase),
        ("machineName", &scan.machine.name),
        ("machineId", &scan.machine.id),
        ("scannerType", &scan.machine.scanner_type),
        ("scanFacilityName", &scan.facility.name),
        ("scanFacilityCity", &scan.facility.city),
        ("scanFacilityState", &scan.facility.state),
        ("scanFacilityZip", &scan.facility.zip),
        ("scanLocaleKey", &scan.facility.locale_key),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            put(name, value);
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracking::scan::{RawScan, ScanSource};
    use proptest::prelude::*;
    use serde_json::json;

    fn scan_of(event: &Value, source: ScanSource) -> Scan {
        let object = event.as_object().expect("an object");
        Scan::from_raw(RawScan::from_json(object).expect("reads"), source).expect("checks")
    }

    fn round_trip(scan: &Scan) -> Scan {
        let event = feed_event(scan);
        Scan::from_raw(
            RawScan::from_json(&event).expect("feed_event reads back"),
            scan.source,
        )
        .expect("feed_event checks back")
    }

    #[test]
    fn a_full_feed_event_comes_back_with_the_feed_names() {
        let original = json!({
            "imb": "0027012345600000000198765432101",
            "imbTrackingCode": "00270123456000000001",
            "routingCodeImbMatchingPortion": "98765432101",
            "scanDatetime": "2026-11-20 08:15:00",
            "scanEventCode": "918",
            "handlingEventType": "L",
            "handlingEventTypeDescription": "Letter",
            "mailPhase": "Phase 3c - Destination Sequenced Carrier Sortation",
            "machineName": "DBCS-042",
            "machineId": "042",
            "scannerType": "DBCS",
            "scanFacilityName": "CHICAGO IL P&DC",
            "scanFacilityCity": "CHICAGO",
            "scanFacilityState": "IL",
            "scanFacilityZip": "60607",
            "scanLocaleKey": "1234567"
        });
        let scan = scan_of(&original, ScanSource::Import);
        let event = feed_event(&scan);
        assert_eq!(Value::Object(event), original);
        assert_eq!(round_trip(&scan), scan);
    }

    #[test]
    fn absent_fields_are_left_out_and_an_empty_routing_sends_only_the_tracking_code() {
        let scan = scan_of(
            &json!({"imb": "00270123456000000001", "scanDatetime": "11/20/2026 8:15 AM",
                    "scan_event_code": 919}),
            ScanSource::Pull,
        );
        assert_eq!(scan.routing, "");
        let event = feed_event(&scan);
        assert_eq!(
            Value::Object(event),
            json!({"imbTrackingCode": "00270123456000000001", "imb": "00270123456000000001",
                   "scanDatetime": "11/20/2026 8:15 AM", "scanEventCode": "919"})
        );
        assert_eq!(round_trip(&scan), scan);
    }

    #[test]
    fn a_routing_that_differs_from_the_imb_tail_is_kept() {
        // USPS matched on a 5-digit routing while the full IMb carried 11.
        let scan = scan_of(
            &json!({"imb": "0027012345600000000198765432101",
                    "routingCodeImbMatchingPortion": "98765",
                    "scanDatetime": "2026-11-20T08:15:00.250-06:00", "scanEventCode": "911"}),
            ScanSource::Push,
        );
        assert_eq!(scan.routing, "98765");
        let event = feed_event(&scan);
        assert_eq!(event["imb"], "0027012345600000000198765");
        assert_eq!(round_trip(&scan), scan);
    }

    /// Text a feed field may hold: mostly plain, sometimes with blanks inside,
    /// punctuation or non-ASCII letters.
    fn field_text() -> impl Strategy<Value = Option<String>> {
        prop::option::of("[A-Za-z0-9&/ .,'é-]{0,30}")
    }

    /// A scan time in one of the forms `ScanTime::parse` reads.
    fn scan_time() -> impl Strategy<Value = String> {
        (
            1990i64..2100,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
            0usize..6,
        )
            .prop_map(|(y, mo, d, h, mi, s, form)| match form {
                0 => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}"),
                1 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z"),
                2 => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.125-05:00"),
                3 => format!("{mo}/{d}/{y:04} {h:02}:{mi:02}:{s:02}"),
                4 => format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}"),
                _ => format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}+0930"),
            })
    }

    fn source() -> impl Strategy<Value = ScanSource> {
        prop_oneof![
            Just(ScanSource::Pull),
            Just(ScanSource::Push),
            Just(ScanSource::Import)
        ]
    }

    /// A raw feed object, valid by construction, with the feed's or the pull API's
    /// spelling.
    fn raw_event() -> impl Strategy<Value = Map<String, Value>> {
        let ids = (
            "[0-9][0-4][0-9]{18}",
            prop_oneof![Just(String::new()), "[0-9]{5}", "[0-9]{9}", "[0-9]{11}"],
            0usize..3,
            scan_time(),
            "[0-9A-Z]{1,8}",
        );
        let texts = (
            field_text(),
            field_text(),
            field_text(),
            field_text(),
            field_text(),
            field_text(),
            field_text(),
            field_text(),
            prop::option::of(prop_oneof![
                Just("IL".to_owned()),
                Just("AZ".to_owned()),
                Just("HI".to_owned()),
                Just("ZZ".to_owned()),
                "[A-Z]{2}"
            ]),
            prop::option::of("[0-9]{5}(-[0-9]{4})?"),
            field_text(),
        );
        (ids, texts).prop_map(
            |(
                (tracking, routing, keying, time, code),
                (het, hed, phase, mname, mid, stype, fname, fcity, fstate, fzip, locale),
            )| {
                let mut o = Map::new();
                let mut put = |k: &str, v: Option<String>| {
                    if let Some(v) = v {
                        o.insert(k.to_owned(), Value::String(v));
                    }
                };
                match keying {
                    // Pull: the full IMb only.
                    0 => put("imb", Some(format!("{tracking}{routing}"))),
                    // Feed: tracking code and routing apart.
                    1 => {
                        put("imbTrackingCode", Some(tracking.clone()));
                        put("routingCodeImbMatchingPortion", Some(routing.clone()));
                    }
                    // Feed: all three.
                    _ => {
                        put("imb", Some(format!("{tracking}{routing}")));
                        put("imbTrackingCode", Some(tracking.clone()));
                        put("imbRoutingCode", Some(routing.clone()));
                    }
                }
                put("scanDatetime", Some(time));
                put("scanEventCode", Some(code));
                put("handlingEventType", het);
                put("handlingEventTypeDescription", hed);
                put("mail_phase", phase);
                put("machineName", mname);
                put("machineId", mid);
                put("scanner_type", stype);
                put("scanFacilityName", fname);
                put("scan_facility_city", fcity);
                put("scanFacilityState", fstate);
                put("scanFacilityZip", fzip);
                put("scan_facility_locale_key", locale);
                o
            },
        )
    }

    proptest! {
        #[test]
        fn every_checked_scan_comes_back_from_its_feed_event(
            raw in raw_event(),
            source in source(),
        ) {
            let scan = Scan::from_raw(RawScan::from_json(&raw).expect("reads"), source)
                .expect("a valid event by construction");
            let event = feed_event(&scan);
            // Only feed (camelCase) names, never a null.
            for (name, value) in &event {
                prop_assert!(RawScan::is_field(name) && !name.contains('_'), "{}", name);
                prop_assert!(value.is_string(), "{}: {}", name, value);
            }
            let back = Scan::from_raw(RawScan::from_json(&event).expect("reads back"), source)
                .expect("checks back");
            prop_assert_eq!(back, scan);
        }
    }
}
