//! Prints this machine's GPU inventory, each device with its health, as
//! JSON: `cargo run -p moon-gpu --example inventory`.
//!
//! The inventory comes from NVML, or from the file `MOON_GPU_INVENTORY`
//! names (try `moon-gpu/examples/inventory-h100x8.yaml`). Without either it
//! prints the typed error and exits with 1.

use std::process::ExitCode;

fn main() -> ExitCode {
    let inventory = moon_gpu::detect().and_then(|provider| provider.inventory());
    match inventory {
        Ok(inventory) => {
            let json = serde_json::to_string_pretty(&inventory).expect("an inventory is JSON");
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
