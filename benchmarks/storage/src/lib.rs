//! moon-storage measured against the storage systems' own clients, side by side in one run.
//!
//! - `storage-seaweedfs`: the blob API (and, for information, the filer's paths) against
//!   `weed benchmark`, SeaweedFS's Go client, on the same servers; run it with
//!   `benchmarks/storage_seaweedfs.sh`.
//! - `storage-hdfs`: a sequential write and read of one large file through [`HdfsStore`]
//!   against Hadoop's Java client in one JVM; run it with `benchmarks/storage_hdfs.sh`.
//!
//! The sides alternate round by round and are compared by their medians: on a shared machine
//! only a ratio measured in one run means anything.
//!
//! [`HdfsStore`]: moon_storage::HdfsStore

pub mod cpu;
pub mod hdfs_load;
pub mod java_peer;
pub mod master;
pub mod seaweed_load;
pub mod stats;
pub mod weed;
