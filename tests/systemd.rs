//! The systemd integration files in `systemd/`: the unit passes `systemd-analyze
//! verify` against the real `labeld` binary, keeps the settings the daemon relies on
//! (notify, watchdog, printer device access), the udev rules are well formed and cover
//! every vendor in the model table, and the sysusers/tmpfiles snippets create the user,
//! its groups and `/etc/labeld` in a scratch root.
//!
//! Tools come from Debian's `systemd` package (`udevadm` from `udev`). When one is
//! missing the test prints a skip note and passes, unless `LABELD_REQUIRE_TOOLS=1`
//! (CI sets it), when it fails. `udevadm verify` exists from systemd 253 on; with an
//! older udev the rules get this file's own syntax check only.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where the unit installs the binary; the test points it at the built one instead.
const INSTALLED_BINARY: &str = "/usr/local/bin/labeld";

fn systemd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("systemd")
}

fn read_systemd_file(name: &str) -> String {
    let path = systemd_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fresh directory under the system temp dir, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Scratch {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("labeld-systemd-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a tool. `None` (after a skip note) when it is not installed, unless
/// `LABELD_REQUIRE_TOOLS=1`, when a missing tool fails the test.
fn run_tool(program: &str, args: &[&str], package: &str) -> Option<Output> {
    match Command::new(program)
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "cat")
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
    {
        Ok(out) => Some(out),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("LABELD_REQUIRE_TOOLS").is_some_and(|v| v == "1") {
                panic!("{program} not found (LABELD_REQUIRE_TOOLS=1): apt-get install {package}");
            }
            eprintln!(
                "\n*** SKIPPED: {program} not installed (apt-get install {package}); \
                 the systemd files were not checked by it ***\n"
            );
            None
        }
        Err(err) => panic!("running {program}: {err}"),
    }
}

fn combined(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// `(section, key, value)` for every assignment of a unit file, in order.
fn unit_settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut settings = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("labeld.service: not an assignment: {line:?}"));
        settings.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    settings
}

fn service_values<'a>(settings: &'a [(String, String, String)], key: &str) -> Vec<&'a str> {
    settings
        .iter()
        .filter(|(s, k, _)| s == "Service" && k == key)
        .map(|(_, _, v)| v.as_str())
        .collect()
}

fn service_value<'a>(settings: &'a [(String, String, String)], key: &str) -> &'a str {
    match service_values(settings, key).as_slice() {
        [one] => one,
        other => panic!("labeld.service: expected one {key}=, found {other:?}"),
    }
}

/// The unit with ExecStart pointing at the binary cargo built, in a scratch dir.
fn unit_for_built_binary(scratch: &Scratch) -> PathBuf {
    let unit = read_systemd_file("labeld.service");
    let exec_start = format!("ExecStart={INSTALLED_BINARY} ");
    assert!(
        unit.contains(&exec_start),
        "labeld.service: ExecStart should run {INSTALLED_BINARY}"
    );
    let built = env!("CARGO_BIN_EXE_labeld");
    let unit = unit.replace(&exec_start, &format!("ExecStart={built} "));
    let path = scratch.path().join("labeld.service");
    std::fs::write(&path, unit).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// `systemd-analyze verify` output lines that concern the unit under test. A line that
/// names only other units is the host's business (a container lacking some unit) and is
/// printed, not failed on; any other output is a finding.
fn verify_findings(output: &str, unit_path: &Path) -> (Vec<String>, Vec<String>) {
    let unit_path = unit_path.display().to_string();
    let mut findings = Vec::new();
    let mut noise = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let ours = line.contains("labeld.service") || line.contains(&unit_path);
        let names_other_unit = line.split_whitespace().any(|word| {
            let word = word.trim_matches(|c: char| c == ':' || c == ',' || c == '\'');
            [
                ".service", ".target", ".socket", ".mount", ".slice", ".device", ".path",
            ]
            .iter()
            .any(|suffix| word.ends_with(suffix))
        });
        if !ours && names_other_unit {
            noise.push(line.to_string());
        } else {
            findings.push(line.to_string());
        }
    }
    (findings, noise)
}

#[test]
fn unit_passes_systemd_analyze_verify() {
    let scratch = Scratch::new("verify");
    let unit = unit_for_built_binary(&scratch);
    let unit_arg = unit.display().to_string();
    let Some(out) = run_tool(
        "systemd-analyze",
        &["verify", "--man=no", &unit_arg],
        "systemd",
    ) else {
        return;
    };
    let text = combined(&out);
    let (findings, noise) = verify_findings(&text, &unit);
    for line in &noise {
        eprintln!("systemd-analyze verify (host, ignored): {line}");
    }
    assert!(
        findings.is_empty(),
        "systemd-analyze verify {unit_arg} reported:\n{}",
        findings.join("\n")
    );
    assert!(
        out.status.success() || !noise.is_empty(),
        "systemd-analyze verify failed without saying why: {:?}",
        out.status
    );

    // The check can fail: the same unit with a typo, a bad device right and a missing
    // binary is reported, each on a line naming the unit.
    let broken = scratch.path().join("broken").join("labeld.service");
    let broken_dir = broken.parent().expect("has a parent");
    std::fs::create_dir_all(broken_dir).expect("scratch dir");
    let text = std::fs::read_to_string(&unit)
        .expect("unit copy")
        .replace("DeviceAllow=char-usb rw", "DeviceAllow=char-usb rwx")
        .replace("WatchdogSec=", "WatchdogSecs=")
        .replace(env!("CARGO_BIN_EXE_labeld"), "/nonexistent/labeld");
    std::fs::write(&broken, text).expect("write broken unit");
    let broken_arg = broken.display().to_string();
    let out = run_tool(
        "systemd-analyze",
        &["verify", "--man=no", &broken_arg],
        "systemd",
    )
    .expect("found the first time");
    let (findings, _) = verify_findings(&combined(&out), &broken);
    let report = findings.join("\n");
    for expected in ["rwx", "WatchdogSecs", "/nonexistent/labeld"] {
        assert!(
            report.contains(expected),
            "verify did not report {expected:?}; it said:\n{report}"
        );
    }

    // The exposure score, for the log (the hardening is explained in the unit; the
    // score moves between systemd versions, so it is not asserted).
    if let Some(out) = run_tool(
        "systemd-analyze",
        &["security", "--offline=true", &unit_arg],
        "systemd",
    ) {
        let text = combined(&out);
        match text.lines().find(|l| l.contains("Overall exposure level")) {
            Some(line) => eprintln!("systemd-analyze security: {}", line.trim()),
            None => eprintln!(
                "systemd-analyze security --offline gave no score ({:?}): {}",
                out.status,
                text.lines().last().unwrap_or("")
            ),
        }
    }
}

#[test]
fn unit_keeps_what_the_daemon_relies_on() {
    let settings = unit_settings(&read_systemd_file("labeld.service"));
    let one = |key: &str| service_value(&settings, key);

    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    assert_eq!(one("WatchdogSec"), "30");
    assert_eq!(one("Restart"), "on-failure");
    assert_eq!(one("ExecReload"), "/bin/kill -HUP $MAINPID");
    assert!(one("ExecStart").starts_with(&format!("{INSTALLED_BINARY} --config ")));
    assert_eq!(one("User"), "labeld");
    assert_eq!(one("Group"), "labeld");
    let groups: BTreeSet<&str> = one("SupplementaryGroups").split_whitespace().collect();
    assert!(
        groups.contains("lp") && groups.contains("dialout"),
        "{groups:?}"
    );
    assert_eq!(one("StateDirectory"), "labeld");
    assert_eq!(one("RuntimeDirectory"), "labeld");
    assert_eq!(one("RuntimeDirectoryMode"), "0750");
    let stop: u32 = one("TimeoutStopSec")
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop >= 60,
        "TimeoutStopSec={stop}: too short to finish a label"
    );

    // A private /dev would hide every printer; PrivateUsers would unmap lp and dialout.
    for forbidden in [
        "PrivateDevices",
        "PrivateUsers",
        "DynamicUser",
        "PrivateNetwork",
    ] {
        assert!(
            service_values(&settings, forbidden).is_empty(),
            "labeld.service must not set {forbidden}="
        );
    }
    assert_eq!(one("DevicePolicy"), "closed");
    let allowed: BTreeSet<&str> = service_values(&settings, "DeviceAllow")
        .into_iter()
        .collect();
    for device in [
        "char-usb_device rw",
        "char-usb rw",
        "char-ttyS rw",
        "char-ttyUSB rw",
        "char-ttyACM rw",
    ] {
        assert!(allowed.contains(device), "DeviceAllow={device} missing");
    }
    let families: BTreeSet<&str> = one("RestrictAddressFamilies").split_whitespace().collect();
    for family in ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"] {
        assert!(
            families.contains(family),
            "RestrictAddressFamilies: {family}"
        );
    }
    assert_eq!(one("ProtectSystem"), "strict");
    assert_eq!(one("NoNewPrivileges"), "yes");
}

/// One `KEY[{attr}] OP "value"` token of a udev rule line.
struct RuleToken<'a> {
    key: &'a str,
    op: &'a str,
    value: &'a str,
}

/// Splits a udev rule line into tokens; `Err` says what is malformed.
fn rule_tokens(line: &str) -> Result<Vec<RuleToken<'_>>, String> {
    let mut tokens = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let key_end = rest
            .find(['=', '!', '+', '-', ':'])
            .ok_or_else(|| format!("no operator after {rest:?}"))?;
        let key = rest[..key_end].trim();
        let after_key = &rest[key_end..];
        let op = ["==", "!=", "+=", "-=", ":=", "="]
            .into_iter()
            .find(|op| after_key.starts_with(op))
            .ok_or_else(|| format!("bad operator in {after_key:?}"))?;
        let after_op = after_key[op.len()..].trim_start();
        let quoted = after_op
            .strip_prefix('"')
            .ok_or_else(|| format!("{key}: value not quoted"))?;
        let close = quoted
            .find('"')
            .ok_or_else(|| format!("{key}: unterminated value"))?;
        tokens.push(RuleToken {
            key,
            op,
            value: &quoted[..close],
        });
        rest = quoted[close + 1..].trim_start();
        if let Some(next) = rest.strip_prefix(',') {
            rest = next.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".to_string());
            }
        } else if !rest.is_empty() {
            return Err(format!("expected a comma before {rest:?}"));
        }
    }
    Ok(tokens)
}

#[test]
fn udev_rules_are_well_formed_and_cover_every_known_vendor() {
    let rules = read_systemd_file("60-labeld-printers.rules");
    let mut labels = BTreeSet::new();
    let mut gotos = BTreeSet::new();
    let mut vendors = BTreeSet::new();
    for (n, line) in rules.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let tokens =
            rule_tokens(line).unwrap_or_else(|e| panic!("60-labeld-printers.rules:{}: {e}", n + 1));
        for t in &tokens {
            let base = t.key.split('{').next().unwrap_or(t.key);
            let matches = ["ACTION", "SUBSYSTEM", "KERNEL", "ATTR", "ENV"];
            // No TAG (TAG+="uaccess" is for a seat's user, not a system service),
            // OWNER, RUN or SYMLINK: group and mode are all labeld needs.
            let assigns = ["GROUP", "MODE", "IMPORT", "GOTO", "LABEL", "ENV"];
            let ok = match t.op {
                "==" | "!=" => matches.contains(&base),
                _ => assigns.contains(&base),
            };
            assert!(
                ok,
                "60-labeld-printers.rules:{}: unexpected {}{}",
                n + 1,
                t.key,
                t.op
            );
            match base {
                "GOTO" => {
                    gotos.insert(t.value);
                }
                "LABEL" => {
                    labels.insert(t.value);
                }
                "MODE" => assert_eq!(t.value, "0660", "line {}", n + 1),
                "GROUP" => assert_eq!(t.value, "lp", "line {}", n + 1),
                _ => {}
            }
            if t.key == "ATTR{idVendor}" {
                vendors.insert(t.value.to_string());
            }
        }
    }
    assert_eq!(
        gotos, labels,
        "every GOTO has its LABEL and the other way round"
    );
    assert!(
        rules.contains(r#"ENV{ID_USB_INTERFACES}=="*:0701??:*""#),
        "printer-class interfaces"
    );
    assert!(
        rules.contains(r#"SUBSYSTEM=="usbmisc", KERNEL=="lp[0-9]*""#),
        "usblp nodes"
    );

    let known: BTreeSet<String> = labeld_drivers::models::MODELS
        .iter()
        .filter_map(|m| m.usb)
        .map(|(vendor, _)| format!("{vendor:04x}"))
        .collect();
    assert!(!known.is_empty());
    let missing: Vec<&String> = known.difference(&vendors).collect();
    assert!(
        missing.is_empty(),
        "vendors in drivers/src/models.rs without a udev rule: {missing:?}"
    );

    udevadm_verify(&systemd_dir().join("60-labeld-printers.rules"));
}

/// `udevadm verify` on the rules, where this udev has it (systemd 253 and later).
fn udevadm_verify(rules: &Path) {
    let version = match Command::new("udevadm").arg("--version").output() {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Err(_) => {
            eprintln!("note: udevadm not installed; udev rules got the built-in syntax check only");
            return;
        }
    };
    let major: u32 = version
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if major < 253 {
        eprintln!(
            "note: udevadm {version} has no `verify` (systemd 253+); \
             udev rules got the built-in syntax check only"
        );
        return;
    }
    let path = rules.display().to_string();
    let out = Command::new("udevadm")
        .args(["verify", "--resolve-names=never", &path])
        .output()
        .expect("udevadm ran a moment ago");
    assert!(
        out.status.success(),
        "udevadm verify {path}:\n{}",
        combined(&out)
    );
}

/// True when this process runs as root (tmpfiles needs it to chown).
fn running_as_root(scratch: &Scratch) -> bool {
    use std::os::unix::fs::MetadataExt;
    let probe = scratch.path().join("probe");
    std::fs::write(&probe, b"").expect("scratch file");
    std::fs::metadata(&probe)
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn sysusers_and_tmpfiles_make_the_user_groups_and_config_dir() {
    let root = Scratch::new("root");
    let sysusers_d = root.path().join("etc/sysusers.d");
    let tmpfiles_d = root.path().join("etc/tmpfiles.d");
    std::fs::create_dir_all(&sysusers_d).expect("scratch dir");
    std::fs::create_dir_all(&tmpfiles_d).expect("scratch dir");
    std::fs::copy(
        systemd_dir().join("labeld.sysusers"),
        sysusers_d.join("labeld.conf"),
    )
    .expect("copy sysusers");
    std::fs::copy(
        systemd_dir().join("labeld.tmpfiles"),
        tmpfiles_d.join("labeld.conf"),
    )
    .expect("copy tmpfiles");
    let root_arg = format!("--root={}", root.path().display());

    let Some(out) = run_tool("systemd-sysusers", &[&root_arg], "systemd") else {
        return;
    };
    assert!(out.status.success(), "systemd-sysusers: {}", combined(&out));
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).expect("passwd");
    let group = std::fs::read_to_string(root.path().join("etc/group")).expect("group");
    let user = passwd
        .lines()
        .find(|l| l.starts_with("labeld:"))
        .unwrap_or_else(|| panic!("no labeld user in\n{passwd}"));
    assert!(user.ends_with(":/usr/sbin/nologin"), "{user}");
    let members = |name: &str| -> Vec<String> {
        let line = group
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no group {name} in\n{group}"));
        line.rsplit(':')
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::to_string)
            .collect()
    };
    for name in ["lp", "dialout"] {
        assert!(
            members(name).iter().any(|m| m == "labeld"),
            "labeld not in {name}"
        );
    }
    let labeld_gid: u32 = group
        .lines()
        .find(|l| l.starts_with("labeld:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|g| g.parse().ok())
        .expect("labeld group with a gid");

    if !running_as_root(&root) {
        eprintln!("note: not root; systemd-tmpfiles --create (chown) not run");
        return;
    }
    let Some(out) = run_tool("systemd-tmpfiles", &[&root_arg, "--create"], "systemd") else {
        return;
    };
    assert!(out.status.success(), "systemd-tmpfiles: {}", combined(&out));
    use std::os::unix::fs::MetadataExt;
    let etc_labeld = std::fs::metadata(root.path().join("etc/labeld")).expect("/etc/labeld");
    assert!(etc_labeld.is_dir());
    assert_eq!(etc_labeld.mode() & 0o7777, 0o750);
    assert_eq!(etc_labeld.uid(), 0);
    assert_eq!(etc_labeld.gid(), labeld_gid);
}
