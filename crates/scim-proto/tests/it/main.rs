//! Integration tests of scim-proto: RFC examples and real-client corpora, table-driven.
mod filter_rfc;
