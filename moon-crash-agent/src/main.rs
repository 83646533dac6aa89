//! moon's agent and replica supervisor with the agent's crash points built
//! in (moon-core's `crash-points` feature), for moon's own crash tests: a
//! file `faults/<point>` in a home makes this agent SIGKILL itself at that
//! point, once. The tests point `MOON_AGENT_PROGRAM` (or `agent_program`)
//! at it; nothing that ships is built from it.

fn main() {
    let code = moon_core::local::run_hidden_command().unwrap_or_else(|| {
        eprintln!("moon-crash-agent is started by moon's crash tests, not by hand");
        2
    });
    std::process::exit(code);
}
