//! Objects as a controller last wrote them, kept until its informer's cache shows that version
//! (or a newer one). A round that ran on the older cached copy would act on a status the
//! controller already replaced: add a condition and its Event twice, or start a run again.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use serde_json::Value;

use crate::api::meta;

/// Written objects by uid.
#[derive(Default)]
pub struct Written(HashMap<String, Arc<Value>>);

impl Written {
    /// The cached object, or the newer copy written since.
    pub fn fresher(&mut self, cached: Arc<Value>) -> Arc<Value> {
        let uid = meta::uid(&cached).to_string();
        match self.0.get(&uid) {
            Some(mine) if meta::resource_version(mine) > meta::resource_version(&cached) => mine.clone(),
            Some(_) => {
                self.0.remove(&uid);
                cached
            }
            None => cached,
        }
    }

    /// Remember what a write returned.
    pub fn remember(&mut self, written: Value) {
        self.0.insert(meta::uid(&written).to_string(), Arc::new(written));
    }

    /// Forget objects whose uid is no longer live.
    pub fn retain(&mut self, live: &HashSet<&str>) {
        self.0.retain(|uid, _| live.contains(uid.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_newer_copy_wins_until_the_cache_catches_up() {
        let mut written = Written::default();
        let cached =
            |rv: &str| Arc::new(json!({"metadata": {"uid": "u", "resourceVersion": rv}, "status": rv}));
        written.remember(json!({"metadata": {"uid": "u", "resourceVersion": "5"}, "status": "mine"}));
        assert_eq!(written.fresher(cached("4"))["status"], "mine");
        assert_eq!(written.fresher(cached("5"))["status"], "5");
        // Once caught up, the written copy is forgotten.
        assert_eq!(written.fresher(cached("4"))["status"], "4");
    }
}
