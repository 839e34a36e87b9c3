//! Recently read clients, so the token endpoint does not read the client row on every
//! request. Entries live one second by the provider's clock (other nodes' changes are seen
//! within that); this node's own registrations and deletions invalidate at once.

use crate::oauth::client::Client;
use std::collections::HashMap;
use std::sync::RwLock;
use time::{Duration, OffsetDateTime};

const CLIENT_CACHE_TTL: Duration = Duration::seconds(1);
const CLIENT_CACHE_MAX: usize = 10_000;

/// Clients (and absent clients) by id, with when they were read.
#[derive(Default)]
pub(crate) struct ClientCache {
    entries: RwLock<HashMap<String, (OffsetDateTime, Option<Client>)>>,
}

/// Whether an entry read at `at` is still fresh at `now` (an entry from the future, after
/// the clock was set back, is not).
fn fresh(at: OffsetDateTime, now: OffsetDateTime) -> bool {
    at <= now && now - at < CLIENT_CACHE_TTL
}

impl ClientCache {
    /// The cached answer for `id`, if fresh at `now`.
    pub(crate) fn get(&self, id: &str, now: OffsetDateTime) -> Option<Option<Client>> {
        let map = self.entries.read().ok()?;
        let (at, c) = map.get(id)?;
        fresh(*at, now).then(|| c.clone())
    }

    /// Remembers the answer for `id`, read at `now`.
    pub(crate) fn put(&self, id: &str, c: Option<Client>, now: OffsetDateTime) {
        if let Ok(mut map) = self.entries.write() {
            if map.len() >= CLIENT_CACHE_MAX {
                map.retain(|_, (at, _)| fresh(*at, now));
                if map.len() >= CLIENT_CACHE_MAX {
                    map.clear();
                }
            }
            map.insert(id.to_owned(), (now, c));
        }
    }

    /// Drops the entry for `id` (registered or deleted here).
    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut map) = self.entries.write() {
            map.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_one_second_of_the_injected_clock() {
        let cache = ClientCache::default();
        let t = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        cache.put("c", None, t);
        assert_eq!(cache.get("c", t + Duration::milliseconds(999)).map(|c| c.is_none()), Some(true));
        assert!(cache.get("c", t + Duration::seconds(1)).is_none());
        assert!(cache.get("c", t - Duration::seconds(1)).is_none(), "the clock was set back");
        cache.forget("c");
        assert!(cache.get("c", t).is_none());
    }
}
