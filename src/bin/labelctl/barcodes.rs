//! `labelctl tray` and `labelctl container`: the Code 128 mail-handling barcodes.

use crate::Failure;
use clap::Args;

/// Arguments of `labelctl tray`.
#[derive(Args)]
pub struct TrayArgs {
    /// The 24 digits.
    digits: String,
}

/// Arguments of `labelctl container`.
#[derive(Args)]
pub struct ContainerArgs {
    /// The 21 characters.
    data: String,
}

/// Runs `labelctl tray`.
pub fn tray(args: TrayArgs) -> Result<(), Failure> {
    let _ = args;
    Err(Failure::Input("tray: not yet wired".into()))
}

/// Runs `labelctl container`.
pub fn container(args: ContainerArgs) -> Result<(), Failure> {
    let _ = args;
    Err(Failure::Input("container: not yet wired".into()))
}
