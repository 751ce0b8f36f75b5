//! Code 128, tray and container barcodes through an independent test decoder.
