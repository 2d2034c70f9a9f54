//! Admission for `batch/v1` Jobs and CronJobs: the defaults kube-apiserver fills in (including
//! the generated selector that ties a Job to its pods by uid), and the rules it validates, with
//! upstream's messages. Kept apart from `validate` so that module stays about the generic path.

use serde_json::{Value, json};

use crate::validate::{default_pod_spec, object_at, set_default};

/// Label (and annotation) carrying a pod's completion index in an Indexed Job.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The label selecting a Job's pods; the generated selector matches on it.
pub const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
/// The label naming a pod's Job.
pub const JOB_NAME: &str = "batch.kubernetes.io/job-name";
/// Pre-1.27 spellings of the two labels, still set by upstream for old selectors and tools.
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const LEGACY_JOB_NAME: &str = "job-name";

/// Defaults of a Job spec, as upstream's `SetDefaults_Job` plus the selector generation of its
/// create strategy. `obj` is the whole Job; its `metadata.uid` is already set on create.
pub fn default_job(obj: &mut Value) {
    let name = obj["metadata"]["name"].clone();
    let uid = obj["metadata"]["uid"].clone();
    let Some(spec) = object_at(obj, &["spec"]) else { return };
    default_job_spec(spec);
    if spec["manualSelector"] != true && uid.is_string() && name.is_string() {
        generate_selector(spec, &name, &uid);
    }
    // Upstream gives a Job without labels its template's labels.
    let template_labels = spec["template"]["metadata"]["labels"].clone();
    let labels = &obj["metadata"]["labels"];
    let unlabeled = labels.is_null() || labels.as_object().is_some_and(|l| l.is_empty());
    if template_labels.is_object()
        && unlabeled
        && let Some(meta) = obj["metadata"].as_object_mut()
    {
        meta.insert("labels".into(), template_labels);
    }
}

/// Defaults of a `JobSpec` (also used for a CronJob's `jobTemplate.spec`).
pub fn default_job_spec(spec: &mut Value) {
    // Upstream: both unset means one pod, one completion; parallelism alone means a work
    // queue (completions stays unset).
    if spec["completions"].is_null() && spec["parallelism"].is_null() {
        spec["completions"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    set_default(spec, "manualSelector", json!(false));
    if let Some(pod) = object_at(spec, &["template", "spec"]) {
        default_pod_spec(pod);
    }
}

/// The selector and template labels upstream generates, so the Job only ever matches the pods
/// it created (by uid), and users can still select them by job name.
fn generate_selector(spec: &mut Value, name: &Value, uid: &Value) {
    if !spec["template"].is_object() {
        return;
    }
    // Absent parts are created; mistyped ones are left for the type check to refuse.
    if spec["template"]["metadata"].is_null() {
        spec["template"]["metadata"] = json!({});
    }
    let Some(meta) = object_at(spec, &["template", "metadata"]) else { return };
    if meta["labels"].is_null() {
        meta["labels"] = json!({});
    }
    if !meta["labels"].is_object() {
        return;
    }
    for (label, value) in
        [(LEGACY_JOB_NAME, name), (JOB_NAME, name), (LEGACY_CONTROLLER_UID, uid), (CONTROLLER_UID, uid)]
    {
        set_default(&mut meta["labels"], label, value.clone());
    }
    if spec["selector"].is_null() {
        spec["selector"] = json!({});
    }
    if !spec["selector"].is_object() {
        return;
    }
    if spec["selector"]["matchLabels"].is_null() {
        spec["selector"]["matchLabels"] = json!({});
    }
    set_default(&mut spec["selector"]["matchLabels"], CONTROLLER_UID, uid.clone());
}

/// Validation of a Job spec (after the type check), upstream's rules and messages.
pub fn validate_job_spec(spec: &Value, at: &str) -> Result<(), String> {
    for field in ["parallelism", "completions", "backoffLimit", "ttlSecondsAfterFinished"] {
        if spec[field].as_i64().is_some_and(|v| v < 0) {
            return Err(format!(
                "{at}.{field}: Invalid value: {}: must be greater than or equal to 0",
                spec[field]
            ));
        }
    }
    if spec["activeDeadlineSeconds"].as_i64().is_some_and(|v| v <= 0) {
        return Err(format!(
            "{at}.activeDeadlineSeconds: Invalid value: {}: must be greater than 0",
            spec["activeDeadlineSeconds"]
        ));
    }
    match spec["completionMode"].as_str() {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if spec["completions"].is_null() {
                return Err(format!("{at}.completions: Required value: when completion mode is Indexed"));
            }
        }
        Some(other) => {
            return Err(format!(
                "{at}.completionMode: Unsupported value: {other:?}: supported values: \"NonIndexed\", \"Indexed\""
            ));
        }
    }
    let pod = &spec["template"]["spec"];
    if !matches!(pod["restartPolicy"].as_str(), Some("OnFailure" | "Never")) {
        return Err(format!(
            "{at}.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        ));
    }
    Ok(())
}

/// Whole-Job validation: the spec rules, and a selector that selects the template's labels.
pub fn validate_job(obj: &Value) -> Result<(), String> {
    let spec = &obj["spec"];
    validate_job_spec(spec, "spec")?;
    let selector = &spec["selector"];
    if selector["matchLabels"].as_object().is_none_or(|m| m.is_empty())
        && selector["matchExpressions"].as_array().is_none_or(|e| e.is_empty())
    {
        return Err("spec.selector: Required value".into());
    }
    let labels = &spec["template"]["metadata"]["labels"];
    for (k, v) in selector["matchLabels"].as_object().into_iter().flatten() {
        if labels.get(k) != Some(v) {
            return Err(format!(
                "spec.template.metadata.labels: Invalid value: {labels}: `selector` does not match template `labels`"
            ));
        }
    }
    Ok(())
}

/// Fields of a Job that may not change after creation (upstream's update validation).
pub fn validate_job_update(old: &Value, new: &Value) -> Result<(), String> {
    for field in ["selector", "completionMode"] {
        if old["spec"][field] != new["spec"][field] {
            return Err(format!("spec.{field}: Invalid value: {}: field is immutable", new["spec"][field]));
        }
    }
    // Upstream lets a suspended Job that never started change its template; any other
    // template change is refused.
    let never_started = old["status"]["startTime"].is_null() && old["spec"]["suspend"] == true;
    if old["spec"]["template"] != new["spec"]["template"] && !never_started {
        return Err("spec.template: Invalid value: field is immutable".into());
    }
    Ok(())
}

/// Defaults of a CronJob, as upstream's `SetDefaults_CronJob`; the job template's pod spec gets
/// the pod defaults, its Job spec none (they are filled when each Job is created).
pub fn default_cronjob(obj: &mut Value) {
    let Some(spec) = object_at(obj, &["spec"]) else { return };
    set_default(spec, "concurrencyPolicy", json!("Allow"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "successfulJobsHistoryLimit", json!(3));
    set_default(spec, "failedJobsHistoryLimit", json!(1));
    if let Some(pod) = object_at(spec, &["jobTemplate", "spec", "template", "spec"]) {
        default_pod_spec(pod);
    }
}

/// Whole-CronJob validation: schedule and time zone, policies, limits, the job template.
pub fn validate_cronjob(obj: &Value) -> Result<(), String> {
    // Job names add 11 characters (`-` and the scheduled minute) and must stay valid labels.
    let name = obj["metadata"]["name"].as_str().unwrap_or("");
    if name.len() > 52 {
        return Err(format!("metadata.name: Invalid value: {name:?}: must be no more than 52 characters"));
    }
    let spec = &obj["spec"];
    let Some(schedule) = spec["schedule"].as_str().filter(|s| !s.trim().is_empty()) else {
        return Err("spec.schedule: Required value".into());
    };
    let zone = spec["timeZone"].as_str();
    crate::cron::Schedule::parse(schedule, zone).map_err(|e| match e {
        crate::cron::ScheduleError::Schedule(m) => format!("spec.schedule: Invalid value: {schedule:?}: {m}"),
        crate::cron::ScheduleError::TimeZone(_) => {
            format!("spec.timeZone: Invalid value: {:?}: {e}", zone.unwrap_or(""))
        }
    })?;
    match spec["concurrencyPolicy"].as_str() {
        None | Some("Allow" | "Forbid" | "Replace") => {}
        Some(other) => {
            return Err(format!(
                "spec.concurrencyPolicy: Unsupported value: {other:?}: supported values: \"Allow\", \"Forbid\", \"Replace\""
            ));
        }
    }
    for field in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        if spec[field].as_i64().is_some_and(|v| v < 0) {
            return Err(format!(
                "spec.{field}: Invalid value: {}: must be greater than or equal to 0",
                spec[field]
            ));
        }
    }
    validate_job_spec(&spec["jobTemplate"]["spec"], "spec.jobTemplate.spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(spec: Value) -> Value {
        json!({"metadata": {"name": "pi", "uid": "u-1"}, "spec": spec})
    }

    #[test]
    fn defaults_match_upstream() {
        let mut obj = job(json!({"template": {"spec": {"restartPolicy": "Never", "containers": []}}}));
        default_job(&mut obj);
        let spec = &obj["spec"];
        assert_eq!((spec["completions"].clone(), spec["parallelism"].clone()), (json!(1), json!(1)));
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["selector"], json!({"matchLabels": {CONTROLLER_UID: "u-1"}}));
        assert_eq!(
            spec["template"]["metadata"]["labels"],
            json!({CONTROLLER_UID: "u-1", JOB_NAME: "pi", "controller-uid": "u-1", "job-name": "pi"})
        );
        assert_eq!(obj["metadata"]["labels"], spec["template"]["metadata"]["labels"]);
        validate_job(&obj).expect("valid");
    }

    #[test]
    fn parallelism_alone_is_a_work_queue() {
        let mut obj = job(json!({"parallelism": 3, "template": {"spec": {"restartPolicy": "Never"}}}));
        default_job(&mut obj);
        assert!(obj["spec"]["completions"].is_null());
    }

    #[test]
    fn manual_selector_is_left_alone() {
        let mut obj = job(json!({"manualSelector": true, "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"restartPolicy": "Never"}}}));
        default_job(&mut obj);
        assert_eq!(obj["spec"]["selector"], json!({"matchLabels": {"a": "b"}}));
        assert_eq!(obj["spec"]["template"]["metadata"]["labels"], json!({"a": "b"}));
    }

    #[test]
    fn restart_policy_always_is_refused_with_upstreams_message() {
        let mut obj = job(json!({"template": {"spec": {"containers": []}}}));
        default_job(&mut obj);
        assert_eq!(
            validate_job(&obj).expect_err("Always"),
            "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
        );
    }

    #[test]
    fn indexed_needs_completions() {
        let mut obj = job(json!({"parallelism": 2, "completionMode": "Indexed",
            "template": {"spec": {"restartPolicy": "Never"}}}));
        default_job(&mut obj);
        assert!(validate_job(&obj).expect_err("no completions").starts_with("spec.completions"));
    }

    #[test]
    fn selector_and_template_are_immutable_once_started() {
        let mut old = job(json!({"template": {"spec": {"restartPolicy": "Never"}}}));
        default_job(&mut old);
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
        assert!(validate_job_update(&old, &new).is_err());
        old["spec"]["suspend"] = json!(true);
        assert!(validate_job_update(&old, &new).is_ok(), "a suspended, never started Job may change");
        new["spec"]["selector"] = json!({"matchLabels": {"x": "y"}});
        assert!(validate_job_update(&old, &new).expect_err("selector").starts_with("spec.selector"));
    }

    #[test]
    fn mistyped_bodies_do_not_panic() {
        for spec in [json!("x"), json!({"template": "x"}), json!({"template": {"metadata": 1}}), json!(null)]
        {
            let mut obj = job(spec);
            default_job(&mut obj);
            let _ = validate_job(&obj);
        }
    }

    #[test]
    fn cronjob_defaults_and_schedule_errors() {
        let mut obj = json!({"metadata": {"name": "tick"}, "spec": {"schedule": "*/1 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": []}}}}}});
        default_cronjob(&mut obj);
        let spec = &obj["spec"];
        assert_eq!(
            (
                &spec["concurrencyPolicy"],
                &spec["suspend"],
                &spec["successfulJobsHistoryLimit"],
                &spec["failedJobsHistoryLimit"]
            ),
            (&json!("Allow"), &json!(false), &json!(3), &json!(1))
        );
        assert!(spec["jobTemplate"]["spec"]["backoffLimit"].is_null(), "Job defaults come with each Job");
        validate_cronjob(&obj).expect("valid");
        obj["spec"]["schedule"] = json!("* * *");
        assert_eq!(
            validate_cronjob(&obj).expect_err("schedule"),
            "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: * * *"
        );
        obj["spec"]["schedule"] = json!("@daily");
        obj["spec"]["timeZone"] = json!("Nowhere/Land");
        assert_eq!(
            validate_cronjob(&obj).expect_err("zone"),
            "spec.timeZone: Invalid value: \"Nowhere/Land\": unknown time zone Nowhere/Land"
        );
        obj["spec"]["timeZone"] = json!("Europe/Berlin");
        obj["spec"]["concurrencyPolicy"] = json!("Sometimes");
        assert!(validate_cronjob(&obj).expect_err("policy").starts_with("spec.concurrencyPolicy"));
    }
}
