//! labeld's integration tests: one binary, one module per feature.

mod code128;
mod geometry_render;
mod golden;
mod imb_props;
mod imb_usps;
mod labelctl;
mod labelctl_printer;
mod labeld;
mod layout;
mod print_path;
mod protocol;
mod spool;
mod support;
