//! Integration tests for `hallpass-insights`, one test binary (see
//! docs/testing.md, "How the test build is kept small").

mod analyses;
mod http;
