//! The arithmetic of a DaemonSet rolling update, as upstream's `rollingUpdate`: with
//! `maxSurge` 0, old pods are deleted (and replaced by the next round's create) while no more
//! than `maxUnavailable` nodes lack an available daemon; with a surge, a new pod starts beside
//! the old one on up to `maxSurge` nodes and the old one goes once the new one is available.
//! An old pod that is not available is replaced at once: it costs no availability.

use serde_json::Value;

/// A daemon pod as the arithmetic sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Daemon<'a> {
    pub name: &'a str,
    /// Ready for at least `minReadySeconds`.
    pub available: bool,
}

/// The daemon pods of one node that should run the DaemonSet.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub node: &'a str,
    /// The pod of the current revision, if any.
    pub new: Option<Daemon<'a>>,
    /// A pod of an older revision, if any.
    pub old: Option<Daemon<'a>>,
}

/// What one round of the update does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan<'a> {
    /// Old pods to delete.
    pub delete: Vec<&'a str>,
    /// Nodes to start a new pod on beside the old one (surge).
    pub create: Vec<&'a str>,
}

/// Resolve an IntOrString against `total`; daemon percentages round up, as upstream's
/// `UnavailableCount` and `SurgeCount`. Admission has checked the shape; anything else is 0.
pub fn scaled(value: &Value, total: i64) -> i64 {
    match crate::api::workloads::int_or_percent(value, "") {
        Ok((n, false)) => n,
        Ok((percent, true)) => (percent * total + 99) / 100,
        Err(_) => 0,
    }
}

/// `(maxSurge, maxUnavailable)` in pods for `desired` nodes; both zero would never progress,
/// so unavailability becomes 1 then.
pub fn budgets(rolling_update: &Value, desired: i64) -> (i64, i64) {
    let surge = scaled(&rolling_update["maxSurge"], desired);
    let unavailable = scaled(&rolling_update["maxUnavailable"], desired);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// The update step for `slots` (nodes in a stable order).
pub fn plan<'a>(slots: &[Slot<'a>], max_surge: i64, max_unavailable: i64) -> Plan<'a> {
    if max_surge == 0 { replace_in_place(slots, max_unavailable) } else { surge(slots, max_surge) }
}

fn replace_in_place<'a>(slots: &[Slot<'a>], max_unavailable: i64) -> Plan<'a> {
    let mut unavailable = 0;
    let mut free = Vec::new();
    let mut candidates = Vec::new();
    for slot in slots {
        match (slot.new, slot.old) {
            // Missing or doubled: the manage step creates or deletes; not available meanwhile.
            (None, None) | (Some(_), Some(_)) => unavailable += 1,
            (Some(new), None) => unavailable += i64::from(!new.available),
            (None, Some(old)) if !old.available => free.push(old.name),
            (None, Some(old)) => candidates.push(old.name),
        }
    }
    let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i64) as usize;
    free.extend(candidates.into_iter().take(room));
    Plan { delete: free, create: Vec::new() }
}

fn surge<'a>(slots: &[Slot<'a>], max_surge: i64) -> Plan<'a> {
    let mut surging = 0;
    let mut plan = Plan::default();
    let mut candidates = Vec::new();
    for slot in slots {
        match (slot.new, slot.old) {
            (_, None) => {}
            (None, Some(old)) if !old.available => plan.create.push(slot.node),
            (None, Some(_)) => candidates.push(slot.node),
            (Some(new), Some(_)) if !new.available => surging += 1,
            (Some(_), Some(old)) => plan.delete.push(old.name),
        }
    }
    let room = (max_surge - surging).clamp(0, candidates.len() as i64) as usize;
    plan.create.extend(candidates.into_iter().take(room));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn up(name: &str) -> Option<Daemon<'_>> {
        Some(Daemon { name, available: true })
    }

    fn down(name: &str) -> Option<Daemon<'_>> {
        Some(Daemon { name, available: false })
    }

    #[test]
    fn percentages_round_up_for_daemons() {
        assert_eq!(scaled(&json!("10%"), 3), 1);
        assert_eq!(scaled(&json!("50%"), 3), 2);
        assert_eq!(scaled(&json!(2), 3), 2);
        assert_eq!(budgets(&json!({"maxUnavailable": 1, "maxSurge": 0}), 5), (0, 1));
        assert_eq!(budgets(&json!({"maxUnavailable": "0%", "maxSurge": 0}), 5), (0, 1));
        assert_eq!(budgets(&json!({"maxUnavailable": 0, "maxSurge": "20%"}), 5), (1, 0));
    }

    #[test]
    fn one_node_at_a_time_with_max_unavailable_one() {
        let slots = [
            Slot { node: "a", new: None, old: up("a-old") },
            Slot { node: "b", new: None, old: up("b-old") },
        ];
        assert_eq!(plan(&slots, 0, 1).delete, ["a-old"]);
        // While a's new pod is not yet available, nothing else goes.
        let slots = [
            Slot { node: "a", new: down("a-new"), old: None },
            Slot { node: "b", new: None, old: up("b-old") },
        ];
        assert!(plan(&slots, 0, 1).delete.is_empty());
        let slots = [
            Slot { node: "a", new: up("a-new"), old: None },
            Slot { node: "b", new: None, old: up("b-old") },
        ];
        assert_eq!(plan(&slots, 0, 1).delete, ["b-old"]);
        // A node still waiting for its replacement counts as unavailable.
        let slots =
            [Slot { node: "a", new: None, old: None }, Slot { node: "b", new: None, old: up("b-old") }];
        assert!(plan(&slots, 0, 1).delete.is_empty());
    }

    #[test]
    fn broken_old_pods_are_replaced_without_waiting() {
        let slots = [
            Slot { node: "a", new: down("a-new"), old: None },
            Slot { node: "b", new: None, old: down("b-old") },
            Slot { node: "c", new: None, old: up("c-old") },
        ];
        assert_eq!(plan(&slots, 0, 1).delete, ["b-old"]);
        assert_eq!(plan(&slots, 0, 2).delete, ["b-old", "c-old"]);
    }

    #[test]
    fn surge_starts_new_pods_beside_old_ones() {
        let slots = [
            Slot { node: "a", new: None, old: up("a-old") },
            Slot { node: "b", new: None, old: up("b-old") },
        ];
        assert_eq!(plan(&slots, 1, 0), Plan { delete: vec![], create: vec!["a"] });
        let slots = [
            Slot { node: "a", new: down("a-new"), old: up("a-old") },
            Slot { node: "b", new: None, old: up("b-old") },
        ];
        assert_eq!(plan(&slots, 1, 0), Plan::default(), "a is still surging");
        let slots = [
            Slot { node: "a", new: up("a-new"), old: up("a-old") },
            Slot { node: "b", new: None, old: up("b-old") },
        ];
        assert_eq!(plan(&slots, 1, 0), Plan { delete: vec!["a-old"], create: vec!["b"] });
    }
}
