//! moon-storage: one store interface over the storage systems ML platforms run.
//!
//! A [`Store`] is a flat space of objects named by [`StorePath`]s: relative, `/`-separated paths
//! that cannot leave the store. Every backend keeps the same rules (atomic writes, ranged reads
//! with a fixed rule at the end, listings in path order, [`Error::NotFound`] for missing objects)
//! and offers the optional operations it declares in [`Capabilities`]. [`open`] picks the backend
//! from a URL:
//!
//! | URL | backend |
//! |---|---|
//! | `memory://` or `memory://NAME` | [`MemoryStore`], in process memory |
//! | `file:///abs/dir` | [`LocalStore`], a local directory |
//! | `seaweedfs://filer:8888/path?master=host:9333` | [`SeaweedStore`], a SeaweedFS filer (and its blob API) |
//! | `hdfs://namenode:8020/path` | [`HdfsStore`], a directory of an HDFS cluster |
//! | `gluster://host/volume/path` | [`GlusterStore`], a directory of a GlusterFS volume, through its FUSE mount (see [`gluster`] for the mount's lifecycle) |
//!
//! [`Cached`] puts a read-through cache (memory and disk tiers, in pages) in front of any store.
//!
//! ```
//! use bytes::Bytes;
//! use futures::TryStreamExt;
//! use moon_storage::{StorePath, open};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> moon_storage::Result<()> {
//! let store = open("memory://")?;
//! let path = StorePath::parse("runs/7/metrics.json")?;
//! store.put(&path, Bytes::from_static(b"{\"loss\": 0.25}")).await?;
//!
//! let body = store.get(&path).await?.bytes().await?;
//! assert_eq!(body, "{\"loss\": 0.25}");
//! assert_eq!(store.get_range(&path, 2..6).await?, "loss");
//!
//! let runs = StorePath::parse("runs")?;
//! let listed: Vec<_> = store.list(Some(&runs)).try_collect().await?;
//! assert_eq!(listed[0].path, path);
//! assert_eq!(listed[0].size, 14);
//!
//! store.delete(&path).await?;
//! assert!(store.head(&path).await.unwrap_err().is_not_found());
//! # Ok(())
//! # }
//! ```

pub mod cached;
mod error;
pub mod gluster;
pub mod hdfs;
pub mod local;
pub mod memory;
mod path;
pub mod seaweedfs;
mod server;
mod store;
mod url;

pub use cached::{CacheStats, Cached};
pub use error::{Error, Result};
pub use gluster::{GlusterOptions, GlusterStore, GlusterVolumes, VolumeInfo, VolumesOptions};
pub use hdfs::{HdfsOptions, HdfsStore};
pub use local::LocalStore;
pub use memory::MemoryStore;
pub use path::{MAX_PATH_BYTES, MAX_SEGMENT_BYTES, StorePath};
pub use seaweedfs::SeaweedStore;
pub use server::Server;
pub use store::{ByteStream, Capabilities, GetResult, ListResult, ObjectMeta, Store};
pub use url::{StoreUrl, open, redact};
