//! The USPS 10,000-case IMb encoder file.
