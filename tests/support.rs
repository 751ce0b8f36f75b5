//! Finding the read-only reference data in `../shared` beside the repository.

use std::path::PathBuf;

/// The `shared` directory: `$LABELD_SHARED_DIR`, else `../shared` next to the
/// repository root.
pub fn shared_dir() -> PathBuf {
    match std::env::var_os("LABELD_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    }
}

/// Reads a file under the shared directory. When it is missing the test is
/// skipped loudly, unless `LABELD_REQUIRE_SHARED=1` (CI sets it), when it fails.
pub fn read_shared(relative: &str) -> Option<String> {
    let path = shared_dir().join(relative);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(err) => {
            if std::env::var_os("LABELD_REQUIRE_SHARED").is_some_and(|v| v == "1") {
                panic!("{}: {err} (LABELD_REQUIRE_SHARED=1)", path.display());
            }
            eprintln!(
                "\n*** SKIPPED: {} not readable ({err}); set LABELD_SHARED_DIR to run this test ***\n",
                path.display()
            );
            None
        }
    }
}
