//! Rate limits every replica counts against: GCRA (the algorithm `governor` runs in memory)
//! as one Lua script on Redis, so a decision is atomic and uses Redis's clock, the same for all
//! replicas. A bucket is one key holding its theoretical arrival time; it expires when the
//! bucket is full again, so idle callers cost nothing.

use std::{sync::LazyLock, time::Duration};

use super::redis::{Redis, Trouble};
use crate::guard::Rate;

/// KEYS[1]: the bucket. ARGV[1]: microseconds per call; ARGV[2]: the burst.
/// Returns 0 when the call may go, else the microseconds until it may.
const GCRA: &str = r"
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000000 + tonumber(now[2])
local per = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local next_tat = tat + per
local ahead = next_tat - now
if ahead > burst * per then
  return ahead - burst * per
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil(ahead / 1000))
return 0
";

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

/// Takes one call from `bucket` (a key under the server's prefix) at `rate`: `Ok(Err(wait))`
/// when the bucket is empty.
pub async fn take(redis: &Redis, bucket: &str, rate: Rate) -> Result<Result<(), Duration>, Trouble> {
    let per_us = rate.per.as_micros().max(1) as u64;
    let wait_us: u64 = redis
        .script(
            &SCRIPT,
            &[&redis.key(bucket)],
            &[per_us.to_string(), rate.burst.to_string()],
        )
        .await?;
    Ok(match wait_us {
        0 => Ok(()),
        wait => Err(Duration::from_micros(wait)),
    })
}
