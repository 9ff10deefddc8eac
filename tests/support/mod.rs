//! Shared test scaffolding: a private moto server per test ([`moto`]) and the output checks
//! every hostile-input test applies ([`checks`]).

pub mod bin;
pub mod checks;
pub mod moto;
