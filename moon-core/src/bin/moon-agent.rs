//! moon's agent and replica supervisor as a program of its own, for Rust
//! programs that embed moon-core without calling
//! `moon_core::local::run_hidden_command` in their own `main`: point
//! `MOON_AGENT_PROGRAM` at it.

fn main() {
    let code = moon_core::local::run_hidden_command().unwrap_or_else(|| {
        eprintln!("moon-agent is started by moon's clients, not by hand (see MOON_AGENT_PROGRAM)");
        2
    });
    std::process::exit(code);
}
