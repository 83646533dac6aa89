//! moon-gpu: GPU inventory, health and placement.
