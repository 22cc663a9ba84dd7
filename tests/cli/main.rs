//! Integration tests: one binary (links faster on 2 cores than many).
//! Prerequisites come from `scripts/test-deps.sh` (the README's test command runs it);
//! a missing one fails the test with a message saying so.

mod arm64;
mod bad_input;
mod check;
mod common;
mod compress;
mod corpus;
mod distro;
mod dkms_projects;
mod extended;
mod fixtures;
mod generations;
mod info;
mod kernels_by_name;
mod layout;
mod limits;
mod mldsa;
mod newcomer;
mod oci;
mod package;
mod pkcs11;
mod project;
mod review;
mod rpm;
mod run;
mod secure_boot;
mod sid;
mod sign;
mod signer;
mod tree;
mod verify;
