//! moon-storage: one store interface over the storage systems ML platforms run.
