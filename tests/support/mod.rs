//! Shared test scaffolding: a private moto server per test ([`moto`]), the Lambda runner's Runtime
//! API stand-in and webhook receiver ([`lambda`]), an IAM stand-in for what moto does not
//! implement ([`iam_stub`]), and the output checks every hostile-input test applies ([`checks`]).

pub mod bin;
pub mod checks;
pub mod iam_stub;
pub mod lambda;
pub mod moto;
