//! The arithmetic of a rolling update, as upstream's deployment controller does it: how far the
//! new ReplicaSet may grow (`maxSurge` above the desired count) and how far the old ones may
//! shrink (keeping `desired - maxUnavailable` pods available). Pure functions over counts, so
//! every rule is unit-tested without a cluster.

use serde_json::Value;

/// The counts of one ReplicaSet the arithmetic reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetCounts {
    /// `spec.replicas`: pods it is asked to keep.
    pub replicas: i64,
    /// `status.availableReplicas`: pods ready for at least `minReadySeconds`.
    pub available: i64,
    /// `status.replicas`: its live pods, which lag behind a scale-down until they are deleted.
    pub pods: i64,
}

impl SetCounts {
    /// Available pods it will keep: a ReplicaSet just scaled down may still report the pods it
    /// is deleting as available, and counting them would let the old sets shrink twice.
    fn keeps_available(&self) -> i64 {
        self.available.min(self.replicas).max(0)
    }
}

/// The resolved `maxSurge` and `maxUnavailable` of a Deployment, in pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fenceposts {
    pub surge: i64,
    pub unavailable: i64,
}

/// Resolve an IntOrString (`3` or `"25%"`) against `total`; percentages round up for surge and
/// down for unavailability, as upstream's `GetScaledValueFromIntOrPercent`.
pub fn scaled_value(value: &Value, total: i64, round_up: bool) -> Result<i64, String> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => {
            n.as_i64().filter(|v| *v >= 0).ok_or_else(|| format!("invalid value {n}: must be >= 0"))
        }
        Value::String(s) => {
            let percent: i64 =
                s.strip_suffix('%').and_then(|p| p.parse().ok()).filter(|p| *p >= 0).ok_or_else(|| {
                    format!("invalid value for IntOrString: invalid type: string is not a percentage: {s:?}")
                })?;
            let scaled = percent * total;
            Ok(if round_up { (scaled + 99) / 100 } else { scaled / 100 })
        }
        other => Err(format!("invalid value for IntOrString: {other}")),
    }
}

/// `maxSurge` and `maxUnavailable` for `desired` pods. Both zero would never make progress, so
/// unavailability becomes 1 then (upstream's `ResolveFenceposts`).
pub fn fenceposts(rolling_update: &Value, desired: i64) -> Result<Fenceposts, String> {
    let surge =
        scaled_value(&rolling_update["maxSurge"], desired, true).map_err(|e| format!("maxSurge: {e}"))?;
    let unavailable = scaled_value(&rolling_update["maxUnavailable"], desired, false)
        .map_err(|e| format!("maxUnavailable: {e}"))?;
    Ok(if surge == 0 && unavailable == 0 {
        Fenceposts { surge, unavailable: 1 }
    } else {
        Fenceposts { surge, unavailable }
    })
}

/// The size the new ReplicaSet should have now: shrink to `desired` if above it, otherwise grow
/// as far as the surge allows over every set's pods. An old set scaled down a moment ago
/// counts the pods it still has: upstream counts only `spec.replicas` there, which lets the
/// new pods start before the old ones are deleted and briefly run more than the surge.
pub fn new_set_target(desired: i64, new: SetCounts, olds: &[SetCounts], surge: i64) -> i64 {
    if new.replicas >= desired {
        return desired;
    }
    let current: i64 = new.replicas + olds.iter().map(|s| s.replicas.max(s.pods)).sum::<i64>();
    let max_total = desired + surge;
    if current >= max_total {
        return new.replicas;
    }
    new.replicas + (max_total - current).min(desired - new.replicas)
}

/// New sizes for the old ReplicaSets (given oldest first), keeping at least
/// `desired - unavailable` pods available counting the new set. Unhealthy old pods go first:
/// they cost no availability (upstream's `cleanupUnhealthyReplicas`), then available ones.
pub fn old_set_targets(desired: i64, unavailable: i64, new: SetCounts, olds: &[SetCounts]) -> Vec<i64> {
    let mut targets: Vec<i64> = olds.iter().map(|s| s.replicas).collect();
    if targets.iter().sum::<i64>() == 0 {
        return targets;
    }
    let all_pods = new.replicas + targets.iter().sum::<i64>();
    let min_available = desired - unavailable.min(desired);
    let new_unavailable = (new.replicas - new.available).max(0);
    let max_scaled_down = all_pods - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return targets;
    }
    let mut scaled_down = 0;
    for (target, set) in targets.iter_mut().zip(olds) {
        let unhealthy = *target - set.keeps_available();
        if scaled_down >= max_scaled_down || unhealthy <= 0 {
            continue;
        }
        let step = unhealthy.min(max_scaled_down - scaled_down);
        *target -= step;
        scaled_down += step;
    }
    let available: i64 = new.keeps_available() + olds.iter().map(SetCounts::keeps_available).sum::<i64>();
    // Never shrink by more than the spare pods overall, even if availability reads high.
    let mut spare = (available - min_available).min(max_scaled_down - scaled_down);
    for target in targets.iter_mut() {
        if spare <= 0 {
            break;
        }
        let step = (*target).min(spare);
        *target -= step;
        spare -= step;
    }
    targets
}

/// The most unavailable pods the Deployment tolerates while it is at its desired size (used
/// by the `Available` condition); 0 for `Recreate`.
pub fn max_unavailable(d: &Value, desired: i64) -> i64 {
    if d["spec"]["strategy"]["type"] == "Recreate" || desired == 0 {
        return 0;
    }
    fenceposts(&d["spec"]["strategy"]["rollingUpdate"], desired)
        .map(|f| f.unavailable.min(desired))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn set(replicas: i64, available: i64) -> SetCounts {
        SetCounts { replicas, available, pods: replicas }
    }

    #[test]
    fn percentages_round_up_for_surge_and_down_for_unavailability() {
        assert_eq!(scaled_value(&json!("25%"), 10, true), Ok(3));
        assert_eq!(scaled_value(&json!("25%"), 10, false), Ok(2));
        assert_eq!(scaled_value(&json!(2), 10, false), Ok(2));
        assert!(scaled_value(&json!("2"), 10, false).is_err());
        assert!(scaled_value(&json!(-1), 10, false).is_err());
        assert!(scaled_value(&json!({}), 10, false).is_err());
    }

    #[test]
    fn zero_surge_and_zero_unavailability_still_make_progress() {
        let f = fenceposts(&json!({"maxSurge": 0, "maxUnavailable": "0%"}), 3).expect("valid");
        assert_eq!(f, Fenceposts { surge: 0, unavailable: 1 });
    }

    #[test]
    fn the_new_set_grows_only_within_the_surge() {
        // 4 wanted, surge 1: one extra pod while the old set still has 4.
        assert_eq!(new_set_target(4, set(0, 0), &[set(4, 4)], 1), 1);
        // At the surge limit nothing grows.
        assert_eq!(new_set_target(4, set(1, 0), &[set(4, 4)], 1), 1);
        // Old pods gone: grow to the desired count, never past it.
        assert_eq!(new_set_target(4, set(1, 1), &[set(1, 1)], 1), 4);
        // Above the desired count (scaled down): straight to it.
        assert_eq!(new_set_target(4, set(6, 6), &[], 1), 4);
        // The old set was scaled 4 -> 3 but still has 4 pods: wait for the deletion.
        let shrinking = SetCounts { replicas: 3, available: 3, pods: 4 };
        assert_eq!(new_set_target(4, set(1, 1), &[shrinking], 1), 1);
    }

    #[test]
    fn old_sets_shrink_only_while_enough_pods_stay_available() {
        // maxUnavailable 0: the old set shrinks only once the new pod is available.
        assert_eq!(old_set_targets(4, 0, set(1, 0), &[set(4, 4)]), vec![4]);
        assert_eq!(old_set_targets(4, 0, set(1, 1), &[set(4, 4)]), vec![3]);
        // maxUnavailable 1: one old pod may go before any new one is ready.
        assert_eq!(old_set_targets(4, 1, set(1, 0), &[set(4, 4)]), vec![3]);
    }

    #[test]
    fn unhealthy_old_pods_go_first_and_cost_no_availability() {
        // The older set's two unready pods go even though nothing new is available yet.
        assert_eq!(old_set_targets(4, 0, set(1, 0), &[set(2, 0), set(3, 3)]), vec![1, 3]);
    }

    #[test]
    fn a_stale_available_count_does_not_shrink_twice() {
        // Scaled 4 -> 3 a moment ago, status still says 4 available.
        assert_eq!(old_set_targets(4, 0, set(1, 1), &[set(3, 4)]), vec![3]);
    }

    #[test]
    fn a_stalled_rollout_keeps_the_old_pods() {
        // The new pods never become available: with maxUnavailable 1 and surge 1 the old set
        // loses one pod and no more.
        let mut old = set(4, 4);
        let mut new = set(0, 0);
        for _ in 0..5 {
            new.replicas = new_set_target(4, new, &[old], 1);
            old.replicas = old_set_targets(4, 1, new, &[old])[0];
            old.available = old.replicas;
            old.pods = old.replicas;
        }
        assert_eq!((old.replicas, new.replicas), (3, 2));
    }

    #[test]
    fn recreate_tolerates_no_unavailability_in_the_available_condition() {
        let d = json!({"spec": {"strategy": {"type": "Recreate"}}});
        assert_eq!(max_unavailable(&d, 3), 0);
        let d = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%"}}}});
        assert_eq!(max_unavailable(&d, 3), 1);
    }
}
