//! Integration tests for `hallpass-callgraph-page`, one test binary (see
//! docs/testing.md, "How the test build is kept small").

mod page;
