//! The IV-MTR pull client (`labeld::tracking::ivmtr`) against the local stand-in
//! (`tracking_standin`): login and token reuse, refresh at half-life, one new login
//! after a 401, back-off on 429/5xx/maintenance pages, "no data" answers, scans
//! arriving over several polls, lookup by serial, and no secret in any error, log line
//! or `Debug` output.

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use labeld::tracking::credentials::{Credentials, Secret};
use labeld::tracking::ivmtr::{IvClient, IvError, PieceLookup};
use labeld::tracking::scan::ScanSource;
use serde_json::Value;

use crate::tracking_standin::{
    credentials, dbcs_918_scan, delivery_scan, destination_scan, origin_scan, Fault, NoDataStyle,
    PieceInfo, Recorded, StandIn, StandInOptions,
};

/// Barcode ID 00, STID 040, Mailer ID 123456, serial 200000001.
const TRACKING: &str = "00040123456200000001";
/// The same piece with a 5-digit routing code.
const IMB: &str = "0004012345620000000160607";
const USER: &str = "mailer-bcg";
const PASSWORD: &str = "Quokka-Zebra-7781!pw";

/// A stand-in with one user, and a client logged into nothing yet.
fn setup() -> (StandIn, IvClient) {
    let standin = StandIn::start();
    standin.add_user(USER, PASSWORD);
    let client = IvClient::new(&standin.settings(), credentials(USER, PASSWORD)).unwrap();
    (standin, client)
}

fn found(lookup: PieceLookup) -> labeld::tracking::ivmtr::PieceData {
    match lookup {
        PieceLookup::Found(data) => data,
        PieceLookup::NoData { message } => panic!("expected data, got NoData({message})"),
    }
}

fn gets(requests: &[Recorded]) -> Vec<&Recorded> {
    requests.iter().filter(|r| r.method == "GET").collect()
}

#[test]
fn login_then_lookup_sends_what_usps_documents() {
    let (standin, mut client) = setup();
    standin.add_scans(IMB, vec![origin_scan("2026-11-20 18:04:11")]);

    let data = found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(data.imb, IMB);
    assert_eq!(data.scans.len(), 1);
    let scan = &data.scans[0];
    assert_eq!(scan.tracking, TRACKING);
    assert_eq!(scan.routing, "60607");
    assert_eq!(scan.event_code, "271");
    assert_eq!(
        scan.mail_phase.as_deref(),
        Some("Phase 1 - Origin Processing")
    );
    assert_eq!(scan.facility.zip.as_deref(), Some("60607"));
    assert_eq!(scan.source, ScanSource::Pull);
    assert!(data.rejected.is_empty(), "{:?}", data.rejected);

    let requests = standin.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(client.requests_made(), 2);
    let login = &requests[0];
    assert_eq!(
        (login.method.as_str(), login.path.as_str()),
        ("POST", "/oauth/authenticate")
    );
    assert_eq!(login.authorization, None);
    let body: Value = serde_json::from_str(&login.body).unwrap();
    assert_eq!(body["username"], USER);
    assert_eq!(body["password"], PASSWORD);
    assert_eq!(body["grant_type"], "authorization");
    assert_eq!(body["response_type"], "token");
    assert_eq!(body["scope"], "user.info.ereg,iv1.apis");
    assert_eq!(body["client_id"], "687b8a36-db61-42f7-83f7-11c79bf7785e");

    let lookup = &requests[1];
    assert_eq!(lookup.method, "GET");
    assert_eq!(
        lookup.path,
        format!("/ivws_api/informedvisapi/api/mt/get/piece/imb/{IMB}")
    );
    let access = &standin.issued_tokens()[0];
    assert_eq!(
        lookup.authorization.as_deref(),
        Some(&*format!("Bearer {access}"))
    );
    assert_eq!(lookup.body, "");
}

#[test]
fn piece_info_is_passed_through() {
    let (standin, mut client) = setup();
    standin.set_piece_info(
        IMB,
        PieceInfo {
            expected_delivery_date: Some("2026-11-24".to_owned()),
            mail_class: Some("First-Class".to_owned()),
            mail_shape: Some("Letter".to_owned()),
            start_the_clock_date: Some("2026-11-20".to_owned()),
        },
    );
    let data = found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(data.expected_delivery_date.as_deref(), Some("2026-11-24"));
    assert_eq!(data.mail_class.as_deref(), Some("First-Class"));
    assert_eq!(data.mail_shape.as_deref(), Some("Letter"));
    assert_eq!(data.start_the_clock_date.as_deref(), Some("2026-11-20"));
    assert!(data.scans.is_empty());
}

#[test]
fn token_is_reused_across_lookups() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    for _ in 0..3 {
        found(client.piece_by_imb(IMB).unwrap());
    }
    assert_eq!(standin.count("POST", "/oauth/authenticate"), 1);
    assert_eq!(standin.count("POST", "/oauth/token"), 0);
    assert_eq!(client.requests_made(), 4);
    let access = format!("Bearer {}", standin.issued_tokens()[0]);
    for get in gets(&standin.requests()) {
        assert_eq!(get.authorization.as_deref(), Some(access.as_str()));
    }
}

#[test]
fn token_is_refreshed_at_half_life() {
    let (standin, mut client) = setup();
    standin.set_expires_in(2);
    standin.add_piece(IMB);
    found(client.piece_by_imb(IMB).unwrap());
    // Past half of the 2 s lifetime.
    std::thread::sleep(Duration::from_millis(1100));
    found(client.piece_by_imb(IMB).unwrap());

    assert_eq!(standin.count("POST", "/oauth/authenticate"), 1);
    assert_eq!(standin.count("POST", "/oauth/token"), 1);
    let tokens = standin.issued_tokens();
    let requests = standin.requests();
    let refresh = requests.iter().find(|r| r.path == "/oauth/token").unwrap();
    let body: Value = serde_json::from_str(&refresh.body).unwrap();
    assert_eq!(body["refresh_token"], tokens[1].as_str());
    assert_eq!(body["grant_type"], "authorization");
    assert_eq!(body["response_type"], "token");
    assert_eq!(body["scope"], "user.info.ereg,iv1.apis");
    assert!(body.get("password").is_none() && body.get("client_id").is_none());
    assert_eq!(refresh.authorization, None);
    // The lookup after the refresh uses the new access token.
    let last = gets(&requests).pop().unwrap().authorization.clone();
    assert_eq!(last, Some(format!("Bearer {}", tokens[2])));
}

#[test]
fn failed_refresh_falls_back_to_a_new_login() {
    let (standin, mut client) = setup();
    standin.set_expires_in(2);
    standin.add_piece(IMB);
    found(client.piece_by_imb(IMB).unwrap());
    std::thread::sleep(Duration::from_millis(1100));
    standin.push_oauth_fault(Fault::Unauthorized);
    found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(standin.count("POST", "/oauth/token"), 1);
    assert_eq!(standin.count("POST", "/oauth/authenticate"), 2);
}

#[test]
fn token_without_expires_in_lives_token_lifetime_secs() {
    let standin = StandIn::start();
    standin.add_user(USER, PASSWORD);
    standin.set_send_expires_in(false);
    standin.add_piece(IMB);
    let mut settings = standin.settings();
    settings.token_lifetime_secs = 2;
    let mut client = IvClient::new(&settings, credentials(USER, PASSWORD)).unwrap();
    found(client.piece_by_imb(IMB).unwrap());
    std::thread::sleep(Duration::from_millis(1100));
    found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(standin.count("POST", "/oauth/token"), 1);
}

#[test]
fn expired_token_gets_one_new_login_and_the_lookup_succeeds() {
    let (standin, mut client) = setup();
    standin.add_scans(IMB, vec![dbcs_918_scan("2026-11-22 04:31:09")]);
    found(client.piece_by_imb(IMB).unwrap());
    standin.expire_all_tokens();
    let data = found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(data.scans[0].event_code, "918");

    assert_eq!(standin.count("POST", "/oauth/authenticate"), 2);
    let requests = standin.requests();
    let gets = gets(&requests);
    assert_eq!(gets.len(), 3);
    let tokens = standin.issued_tokens();
    assert_eq!(gets[1].authorization, Some(format!("Bearer {}", tokens[0])));
    assert_eq!(gets[2].authorization, Some(format!("Bearer {}", tokens[2])));
    assert_eq!(client.requests_made(), 5);
}

#[test]
fn a_second_401_after_a_new_login_is_a_credentials_error() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    standin.push_fault(Fault::Unauthorized);
    standin.push_fault(Fault::Unauthorized);
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert!(matches!(err, IvError::Credentials { .. }), "{err:?}");
    assert_eq!(standin.count("POST", "/oauth/authenticate"), 2);
    assert_eq!(standin.count("GET", IMB), 2);
}

#[test]
fn wrong_password_is_a_credentials_error_with_usps_text_and_no_password() {
    let standin = StandIn::start();
    standin.add_user(USER, PASSWORD);
    let wrong = "Wombat-Wrong-4417?pw";
    let mut client = IvClient::new(&standin.settings(), credentials(USER, wrong)).unwrap();
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert!(matches!(err, IvError::Credentials { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("Bad credentials"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
    assert_eq!(err.retry_after(), None);
    assert!(!err.is_transient());
    // A refused login is not retried, and no lookup is sent.
    assert_eq!(standin.requests().len(), 1);
}

#[test]
fn throttled_request_waits_retry_after_then_succeeds() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    standin.push_fault(Fault::TooManyRequests {
        retry_after_secs: 1,
    });
    found(client.piece_by_imb(IMB).unwrap());
    let requests = standin.requests();
    let gets = gets(&requests);
    assert_eq!(gets.len(), 2);
    let waited = gets[1].at.duration_since(gets[0].at);
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
}

#[test]
fn throttled_on_every_try_reports_retry_after() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    for _ in 0..3 {
        standin.push_fault(Fault::TooManyRequests {
            retry_after_secs: 1,
        });
    }
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert_eq!(
        err,
        IvError::Throttled {
            retry_after: Duration::from_secs(1)
        }
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert!(err.is_transient());
    assert_eq!(standin.count("GET", IMB), 3);
}

#[test]
fn service_unavailable_on_every_try_is_unavailable_after_tries() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    for _ in 0..3 {
        standin.push_fault(Fault::Unavailable);
    }
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert!(
        matches!(
            err,
            IvError::Unavailable {
                status: Some(503),
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(standin.count("GET", IMB), 3);
    assert_eq!(client.requests_made(), 4);
    // The faults are used up: the next lookup works.
    found(client.piece_by_imb(IMB).unwrap());
}

#[test]
fn one_server_error_is_retried() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    found(client.piece_by_imb(IMB).unwrap());
    standin.clear_requests();
    standin.push_fault(Fault::ServerError);
    found(client.piece_by_imb(IMB).unwrap());
    // Two tries of the lookup, no new login.
    let requests = standin.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests.iter().all(|r| r.method == "GET"));
}

#[test]
fn maintenance_page_is_retried() {
    let (standin, mut client) = setup();
    standin.add_scans(IMB, vec![origin_scan("2026-11-20 18:04:11")]);
    standin.push_fault(Fault::MaintenancePage);
    let data = found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(data.scans.len(), 1);
    assert_eq!(standin.count("GET", IMB), 2);
}

#[test]
fn persistent_maintenance_page_is_unavailable() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    for _ in 0..3 {
        standin.push_fault(Fault::MaintenancePage);
    }
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert!(
        matches!(
            err,
            IvError::Unavailable {
                status: Some(200),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTML"), "{err}");
    assert_eq!(standin.count("GET", IMB), 3);
}

#[test]
fn maintenance_page_at_login_is_retried() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    standin.push_oauth_fault(Fault::MaintenancePage);
    found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(standin.count("POST", "/oauth/authenticate"), 2);
}

#[test]
fn empty_200_is_no_data() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    standin.push_fault(Fault::EmptyBody);
    let lookup = client.piece_by_imb(IMB).unwrap();
    assert!(matches!(lookup, PieceLookup::NoData { .. }), "{lookup:?}");
    // Not retried.
    assert_eq!(standin.count("GET", IMB), 1);
}

#[test]
fn unknown_piece_is_no_data_in_both_styles() {
    let (standin, mut client) = setup();
    assert_eq!(
        client.piece_by_imb(IMB).unwrap(),
        PieceLookup::NoData {
            message: "Barcode not found".to_owned()
        }
    );
    standin.set_no_data_style(NoDataStyle::NotFound404);
    assert_eq!(
        client.piece_by_imb(IMB).unwrap(),
        PieceLookup::NoData {
            message: "Piece not found".to_owned()
        }
    );
    assert_eq!(standin.count("GET", IMB), 2);
}

#[test]
fn scans_arrive_over_several_polls() {
    let (standin, mut client) = setup();
    assert!(matches!(
        client.piece_by_imb(IMB).unwrap(),
        PieceLookup::NoData { .. }
    ));
    standin.add_scans(IMB, vec![origin_scan("2026-11-20 18:04:11")]);
    assert_eq!(found(client.piece_by_imb(IMB).unwrap()).scans.len(), 1);
    standin.add_scans(
        IMB,
        vec![
            destination_scan("2026-11-21 23:40:02"),
            dbcs_918_scan("2026-11-22 04:31:09"),
        ],
    );
    let data = found(client.piece_by_imb(IMB).unwrap());
    let codes: Vec<&str> = data.scans.iter().map(|s| s.event_code.as_str()).collect();
    assert_eq!(codes, ["271", "895", "918"]);
    assert!(data.scans.iter().all(|s| s.tracking == TRACKING));
}

#[test]
fn queued_batches_are_revealed_one_per_lookup() {
    let (standin, mut client) = setup();
    standin.queue_scans(
        IMB,
        vec![
            vec![origin_scan("2026-11-20 18:04:11")],
            vec![
                dbcs_918_scan("2026-11-22 04:31:09"),
                delivery_scan("2026-11-22 13:02:00"),
            ],
        ],
    );
    assert_eq!(found(client.piece_by_imb(IMB).unwrap()).scans.len(), 1);
    assert_eq!(found(client.piece_by_imb(IMB).unwrap()).scans.len(), 3);
    assert_eq!(found(client.piece_by_imb(IMB).unwrap()).scans.len(), 3);
}

#[test]
fn a_bad_scan_is_rejected_and_the_rest_kept() {
    let (standin, mut client) = setup();
    let mut no_code = origin_scan("2026-11-20 18:04:11");
    no_code.as_object_mut().unwrap().remove("scan_event_code");
    let bad_time = destination_scan("yesterday");
    standin.add_scans(
        IMB,
        vec![no_code, dbcs_918_scan("2026-11-22 04:31:09"), bad_time],
    );
    let data = found(client.piece_by_imb(IMB).unwrap());
    assert_eq!(data.scans.len(), 1);
    assert_eq!(data.scans[0].event_code, "918");
    assert_eq!(data.rejected.len(), 2, "{:?}", data.rejected);
    assert!(
        data.rejected[0].starts_with("scan 1: "),
        "{:?}",
        data.rejected
    );
    assert!(
        data.rejected[0].contains("scanEventCode"),
        "{:?}",
        data.rejected
    );
    assert!(
        data.rejected[1].starts_with("scan 3: "),
        "{:?}",
        data.rejected
    );
}

#[test]
fn lookup_by_serial_returns_barcodes() {
    let (standin, mut client) = setup();
    standin.add_piece(IMB);
    standin.add_piece("0004065432120000000160607");
    assert_eq!(
        client
            .barcodes_by_serial("123456", "200000001", None)
            .unwrap(),
        vec![IMB.to_owned()]
    );
    assert_eq!(
        client
            .barcodes_by_serial("123456", "200000001", Some("040"))
            .unwrap(),
        vec![IMB.to_owned()]
    );
    assert!(client
        .barcodes_by_serial("123456", "200000001", Some("270"))
        .unwrap()
        .is_empty());
    assert!(client
        .barcodes_by_serial("123456", "200000002", None)
        .unwrap()
        .is_empty());
    let paths: Vec<String> = gets(&standin.requests())
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/ivws_api/informedvisapi/api/mt/get/piece/mid/123456/serial/200000001",
            "/ivws_api/informedvisapi/api/mt/get/piece/mid/123456/serial/200000001/stid/040",
            "/ivws_api/informedvisapi/api/mt/get/piece/mid/123456/serial/200000001/stid/270",
            "/ivws_api/informedvisapi/api/mt/get/piece/mid/123456/serial/200000002",
        ]
    );
}

#[test]
fn lookup_by_serial_with_a_nine_digit_mailer_id() {
    let (standin, mut client) = setup();
    let imb = "00270912345678000042";
    standin.add_piece(imb);
    standin.set_no_data_style(NoDataStyle::NotFound404);
    assert_eq!(
        client
            .barcodes_by_serial("912345678", "000042", None)
            .unwrap(),
        vec![imb.to_owned()]
    );
    assert!(client
        .barcodes_by_serial("912345678", "000043", None)
        .unwrap()
        .is_empty());
}

#[test]
fn only_base_urls_are_known_to_the_client() {
    let standin = StandIn::start_with(StandInOptions {
        oauth_prefix: "/elsewhere/oauth2".to_owned(),
        api_prefix: "/v9/iv".to_owned(),
    });
    standin.add_user(USER, PASSWORD);
    standin.add_scans(IMB, vec![origin_scan("2026-11-20 18:04:11")]);
    let mut settings = standin.settings();
    settings.api_url.push('/');
    let mut client = IvClient::new(&settings, credentials(USER, PASSWORD)).unwrap();
    assert_eq!(found(client.piece_by_imb(IMB).unwrap()).scans.len(), 1);
    let paths: Vec<String> = standin.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/elsewhere/oauth2/authenticate".to_owned(),
            format!("/v9/iv/api/mt/get/piece/imb/{IMB}")
        ]
    );
}

#[test]
fn unreachable_server_is_a_network_error_after_tries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = labeld::tracking::settings::TrackingSettings {
        oauth_url: format!("http://127.0.0.1:{port}/oauth"),
        api_url: format!("http://127.0.0.1:{port}/api"),
        tries: 2,
        max_backoff_secs: 0,
        ..Default::default()
    };
    let mut client = IvClient::new(&settings, credentials(USER, PASSWORD)).unwrap();
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert!(matches!(err, IvError::Network { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(client.requests_made(), 2);
}

#[test]
fn stop_flag_cuts_the_back_off_short() {
    let (standin, client) = setup();
    standin.add_piece(IMB);
    let stop = Arc::new(AtomicBool::new(true));
    let mut client = client.with_stop(Arc::clone(&stop));
    for _ in 0..3 {
        standin.push_fault(Fault::Unavailable);
    }
    let err = client.piece_by_imb(IMB).unwrap_err();
    assert!(matches!(err, IvError::Unavailable { .. }), "{err:?}");
    // Stopped before the second try.
    assert_eq!(standin.count("GET", IMB), 1);
}

#[test]
fn secrets_go_only_where_they_belong() {
    let (standin, mut client) = setup();
    standin.set_expires_in(2);
    standin.add_piece(IMB);
    found(client.piece_by_imb(IMB).unwrap());
    std::thread::sleep(Duration::from_millis(1100));
    found(client.piece_by_imb(IMB).unwrap());
    standin.expire_all_tokens();
    found(client.piece_by_imb(IMB).unwrap());

    let tokens = standin.issued_tokens();
    for request in standin.requests() {
        let everything = format!(
            "{} {:?} {}",
            request.path, request.authorization, request.body
        );
        let is_login = request.path.ends_with("/authenticate");
        let is_refresh = request.path.ends_with("/token");
        assert_eq!(everything.contains(PASSWORD), is_login, "{request:?}");
        if is_login || is_refresh {
            assert_eq!(request.authorization, None, "{request:?}");
        } else {
            let token = request.authorization.as_deref().unwrap();
            assert!(token.starts_with("Bearer "));
            assert!(!request.path.contains(&token["Bearer ".len()..]));
        }
        for token in &tokens {
            if request.body.contains(token.as_str()) {
                assert!(is_refresh, "token in the body of {request:?}");
            }
        }
    }
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn no_secret_in_errors_debug_or_logs() {
    let standin = StandIn::start();
    let token_mark = "TKN-PLATYPUS-";
    standin.set_token_prefix(token_mark);
    standin.add_user(USER, PASSWORD);
    standin.set_expires_in(2);
    standin.add_scans(IMB, vec![origin_scan("2026-11-20 18:04:11")]);

    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();

    let mut seen = Vec::<String>::new();
    tracing::subscriber::with_default(subscriber, || {
        let mut client = IvClient::new(&standin.settings(), credentials(USER, PASSWORD)).unwrap();
        seen.push(format!("{client:?} {client:#?}"));
        found(client.piece_by_imb(IMB).unwrap());
        seen.push(format!("{client:?} {client:#?}"));

        // 401 → new login; 429; 503 ×3; maintenance ×3; refresh; bad scan.
        standin.push_fault(Fault::Unauthorized);
        found(client.piece_by_imb(IMB).unwrap());
        standin.push_fault(Fault::TooManyRequests {
            retry_after_secs: 1,
        });
        found(client.piece_by_imb(IMB).unwrap());
        for (fault, times) in [
            (Fault::Unavailable, 3),
            (Fault::MaintenancePage, 3),
            (Fault::Unauthorized, 2),
        ] {
            for _ in 0..times {
                standin.push_fault(fault.clone());
            }
            let err = client.piece_by_imb(IMB).unwrap_err();
            seen.push(format!("{err} {err:?}"));
        }
        // Logged in again, then refreshed past half-life, the refresh refused.
        found(client.piece_by_imb(IMB).unwrap());
        std::thread::sleep(Duration::from_millis(1100));
        standin.push_oauth_fault(Fault::Unauthorized);
        found(client.piece_by_imb(IMB).unwrap());
        seen.push(format!("{client:?}"));

        // A refused login, with a password just as distinctive.
        let wrong = Credentials {
            username: USER.to_owned(),
            password: Secret::new("Quokka-Zebra-WRONG-pw"),
        };
        let mut refused = IvClient::new(&standin.settings(), wrong.clone()).unwrap();
        let err = refused.piece_by_imb(IMB).unwrap_err();
        seen.push(format!("{err} {err:?} {refused:?} {wrong:?}"));
    });

    let logs = logs.text();
    assert!(
        logs.contains("logged in to IV-MTR"),
        "the subscriber captured nothing:\n{logs}"
    );
    let tokens = standin.issued_tokens();
    assert!(tokens.len() >= 8, "{tokens:?}");
    let everything = format!("{}\n{logs}", seen.join("\n"));
    for secret in [PASSWORD, "Quokka-Zebra-WRONG-pw", token_mark]
        .into_iter()
        .chain(tokens.iter().map(String::as_str))
    {
        assert!(
            !everything.contains(secret),
            "secret {secret:?} leaked into:\n{everything}"
        );
    }
}
