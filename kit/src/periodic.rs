//! Background work on a timer that lives only as long as what it works on.

use std::{
    sync::{Arc, Weak},
    time::Duration,
};

/// Runs `work` on `target` every `period` (not at once), until `target` has been dropped.
pub fn every<T: Send + Sync + 'static>(period: Duration, target: &Arc<T>, work: impl Fn(&T) + Send + 'static) {
    let target: Weak<T> = Arc::downgrade(target);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(target) = target.upgrade() else { return };
            work(&target);
        }
    });
}
