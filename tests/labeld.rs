//! `labeld`'s command line: the self-test on the preview printer, and bad arguments.

use std::process::Command;

#[test]
fn self_test_prints_a_verified_preview() {
    let dir = std::env::temp_dir().join(format!("labeld-preview-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_labeld"))
        .arg("--self-test")
        .env("LABELD_PREVIEW_DIR", &dir)
        .output()
        .expect("labeld runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("verified: 65 bars measured inside USPS-B-3200 tolerances"),
        "{stdout}"
    );
    let png = std::fs::read(dir.join("sample-imb.png")).expect("preview written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(stdout.contains("printed a 4x6 address label"), "{stdout}");
    let label = std::fs::read(dir.join("sample-label.png")).expect("label written");
    assert_eq!(&label[..8], b"\x89PNG\r\n\x1a\n");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn unknown_argument_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_labeld"))
        .arg("--frobnicate")
        .output()
        .expect("labeld runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument"));
}
