//! Shared test scaffolding: a private moto server per test ([`moto`]), the Lambda runner's Runtime
//! API stand-in and webhook receiver ([`lambda`]), and the output checks
//! every hostile-input test applies ([`checks`]).

pub mod bin;
pub mod checks;
pub mod lambda;
pub mod moto;
