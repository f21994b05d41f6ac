//! State that replicas may share. By default every piece lives in this process (rate-limit
//! buckets in the guard, tasks in `tasks::MemoryStore`, sessions in rmcp's session manager);
//! with `MCP_REDIS_URL` set, each moves to Redis through the pieces here, and the rest of the
//! server talks to the same interfaces either way.

pub mod limits;
pub mod redis;
pub mod sessions;
pub mod tasks;

pub use redis::{OnTrouble, Redis};
