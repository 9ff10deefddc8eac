//! ecsdoctor: why did an Amazon ECS task stop, and which IAM principal — the task execution role,
//! the task role, the EC2 container instance role, or nobody in IAM — needs the fix?
//!
//! The library holds everything; `main.rs` only parses arguments and maps results to exit codes.
//! Evidence comes from a [`source`] (AWS, or a bundle of AWS CLI output), is matched against
//! [`rules`] (data, in TOML), and becomes a [`verdict::Diagnosis`] that a [`render`]er prints.
//! Beside the pipeline: [`scan`] (many tasks grouped by cause) and [`lambda`] (the AWS Lambda
//! runner that posts each stopped task's verdict to chat).

pub mod arn;
pub mod cli;
pub mod cmd;
pub mod error;
pub mod evidence;
pub mod iam;
pub mod input;
pub mod lambda;
pub mod render;
pub mod rules;
pub mod sanitize;
pub mod scan;
pub mod source;
pub mod verdict;
pub mod verify;
