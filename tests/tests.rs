//! Integration tests: the real binary against temporary SyftBox trees.

mod util;
