//! The integration tests, as one test binary (one link, one `support`):
//! each module was once a binary of its own, and its tests keep their names
//! under the module (`verdicts::pipe_full_writer_names_the_full_pipe`).
//! Run one area with `cargo test --test it verdicts::`.

mod support;

mod automation;
mod capture;
mod cgroup_tree;
mod cgroups;
mod cli;
mod fixtures;
mod fuzz;
mod golden;
mod graph;
mod holders;
mod limits;
mod privilege;
mod proc_root;
mod reliability;
mod runtimes;
mod schema;
mod sockets;
mod timeline;
mod verdicts;
mod watch;
