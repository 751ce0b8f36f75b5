//! `labelctl printers`: labeld's printers with their live status, as a table; with
//! `--discover`, the USB printers attached to this machine instead (no daemon).

use clap::Args;
use serde_json::{json, Map, Value};

use crate::daemon::{self, Conn, Session};
use crate::discover;
use crate::Failure;

/// Arguments of `labelctl printers`.
#[derive(Args)]
pub struct PrintersArgs {
    /// List the USB printers attached to this machine, each with its IEEE 1284 id and
    /// a `[[printer]]` block for labeld's configuration. Does not talk to labeld.
    #[arg(long)]
    discover: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Runs `labelctl printers`.
pub fn run(args: PrintersArgs) -> Result<(), Failure> {
    if args.discover {
        return discover::run(args.conn.json);
    }
    let mut session = Session::open(&args.conn)?;
    let reply = session.call(json!({"op": "printers"}))?;
    if args.conn.json {
        println!("{}", Value::Object(reply));
        return Ok(());
    }
    let rows: Vec<Map<String, Value>> = reply
        .get("printers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_object().cloned())
        .collect();
    if rows.is_empty() {
        println!("labeld has no printers configured");
        return Ok(());
    }
    daemon::print_table(
        &rows,
        &[
            "name",
            "model",
            "state",
            "queued",
            "printed",
            "detail",
            "last_error",
            "uri",
        ],
        false,
    );
    Ok(())
}
