//! Integration tests: the real binary against temporary SyftBox trees.

mod api_contract;
mod attack_approvals;
mod attack_history;
mod attack_jobs;
mod attack_web;
mod bad_input;
mod browser;
mod cli;
mod config;
mod crash;
mod daemon;
mod faults;
mod gate;
mod http;
mod notify;
mod peers;
mod python_interop;
mod util;
mod venv;
