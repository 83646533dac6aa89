//! moon-net: networking for moon's workloads.
