//! labeld's integration tests: one binary, one module per feature.

mod code128;
mod crash;
mod daemon;
mod emulator;
mod geometry_render;
mod golden;
mod harness;
mod imb_props;
mod imb_usps;
mod labelctl;
mod labelctl_daemon;
mod labelctl_printer;
mod labeld;
mod layout;
mod load;
mod print_path;
mod protocol;
mod pyclient;
mod scheduler;
mod server;
mod spool;
mod support;
mod systemd;
