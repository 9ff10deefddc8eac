//! The one integration-test crate: every end-to-end and catalogue test of ecsdoctor, so the AWS
//! SDK and the library are linked into one test binary instead of one per file.
//!
//! Run it through `scripts/test.sh` (it creates the moto venv the live tests need and pins a safe,
//! loopback-only AWS environment).

#[path = "../support/mod.rs"]
mod support;

mod cli;
mod defects;
mod deploy;
mod event;
mod fuzz;
mod hardening;
mod iam;
mod lambda;
mod live;
mod render;
mod rules;
mod scan;
mod verify;
