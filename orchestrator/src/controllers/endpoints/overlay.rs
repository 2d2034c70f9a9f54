//! What the controller wrote, laid over its informer cache until the cache shows it. A slice
//! created by `generateName` and not yet seen would otherwise be created again by the next
//! round, and an update read back stale would be sent again with an old resourceVersion.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{api::meta, client::informer::Cache};

/// How long a write is laid over the cache at most (the object may have been changed or
/// deleted by someone else, so the cache never shows that version).
const TTL: Duration = Duration::from_secs(60);

/// Objects written (`Some`) or deleted (`None`) by `namespace/name`.
#[derive(Default)]
pub(super) struct Overlay(HashMap<String, (Instant, Option<Arc<Value>>)>);

impl Overlay {
    /// Remember what a create or update returned.
    pub fn wrote(&mut self, obj: Value) {
        self.0.insert(meta::key_of(&obj), (Instant::now(), Some(Arc::new(obj))));
    }

    /// Remember a delete.
    pub fn deleted(&mut self, obj: &Value) {
        self.0.insert(meta::key_of(obj), (Instant::now(), None));
    }

    /// Forget what the cache now shows (or what is too old to wait for).
    pub fn prune(&mut self, cache: &Cache) {
        self.0.retain(|key, (at, written)| {
            if at.elapsed() > TTL {
                return false;
            }
            let cached = cache.get(key);
            match written {
                Some(mine) => {
                    cached.is_none_or(|c| meta::resource_version(&c) < meta::resource_version(mine))
                }
                None => cached.is_some(),
            }
        });
    }

    /// The cached objects with the remembered writes in their place.
    pub fn over(&self, cached: Vec<Arc<Value>>) -> Vec<Arc<Value>> {
        let mut items: Vec<Arc<Value>> = cached
            .into_iter()
            .filter_map(|c| match self.0.get(&meta::key_of(&c)) {
                Some((_, Some(mine))) => Some(mine.clone()),
                Some((_, None)) => None,
                None => Some(c),
            })
            .collect();
        let cached_keys: std::collections::HashSet<String> = items.iter().map(|i| meta::key_of(i)).collect();
        for (key, (_, written)) in &self.0 {
            if let Some(mine) = written.as_ref().filter(|_| !cached_keys.contains(key)) {
                items.push(mine.clone());
            }
        }
        items
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_stand_in_for_the_cache_and_deletes_hide_it() {
        let mut overlay = Overlay::default();
        let obj = |name: &str, rv: &str| json!({"metadata": {"namespace": "ns", "name": name, "resourceVersion": rv}});
        overlay.wrote(obj("new", "7"));
        overlay.wrote(obj("old", "9"));
        overlay.deleted(&obj("gone", "3"));
        let cached = vec![Arc::new(obj("old", "8")), Arc::new(obj("gone", "3")), Arc::new(obj("kept", "2"))];
        let mut seen: Vec<(String, Option<u64>)> = overlay
            .over(cached)
            .iter()
            .map(|o| (meta::name(o).to_string(), meta::resource_version(o)))
            .collect();
        seen.sort();
        assert_eq!(seen, [("kept".into(), Some(2)), ("new".into(), Some(7)), ("old".into(), Some(9))]);
    }
}
