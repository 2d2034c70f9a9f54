//! batch/v1 CronJobs end to end through the real kubectl: a `*/1 * * * *` CronJob starts a Job
//! each minute (named after its scheduled minute) and keeps only its history limit of finished
//! Jobs; `concurrencyPolicy: Forbid` skips a run while one is active; `kubectl create job
//! --from=cronjob/x` starts a run by hand; bad schedules are refused with upstream's message.
//!
//! Schedules have minute granularity and there is no test clock, so the two scheduling tests
//! wait for real minute boundaries: each takes about two to three minutes (they run in parallel).

use std::time::{Duration, Instant};

use wasmkube_e2e::{cluster::Cluster, word_count};

/// Two minute boundaries plus the runs themselves.
const MINUTES: Duration = Duration::from_secs(200);

fn started_cluster(work: &std::path::Path) -> anyhow::Result<Cluster> {
    let cluster = word_count::cluster(work)?;
    cluster.kubectl_ok(&["create", "configmap", "words", "--from-literal=words.txt=tick tock tick"])?;
    Ok(cluster)
}

/// A CronJob running word-count every minute, with more `spec` lines and container `env`.
fn cronjob_yaml(name: &str, spec: &str, env: &str) -> String {
    let template = word_count::pod_template(6, env);
    format!(
        "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: {name}}}\nspec:\n  schedule: '*/1 * * * *'\n{spec}\n  jobTemplate:\n    spec:\n{template}"
    )
}

/// The Jobs controlled by CronJob `name`.
fn jobs_of(cluster: &Cluster, name: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let jobs = cluster.get_json(&["jobs"])?;
    Ok(jobs["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|j| {
            j["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|refs| refs.iter().any(|r| r["kind"] == "CronJob" && r["name"] == name))
        })
        .cloned()
        .collect())
}

/// Wait until CronJob `cronjob` has exactly one Job, finished, and named none of `not`; checked
/// again on every change a `kubectl get jobs --watch` reports.
fn only_finished_job(cluster: &Cluster, cronjob: &str, not: &[&str]) -> anyhow::Result<serde_json::Value> {
    let template = r#"jsonpath={.type} {.object.metadata.name}{"\n"}"#;
    let start_watch =
        || cluster.kubectl_background(&["get", "jobs", "--watch", "--output-watch-events", "-o", template]);
    let mut watch = start_watch()?;
    let deadline = Instant::now() + MINUTES;
    loop {
        let jobs = jobs_of(cluster, cronjob)?;
        if let [job] = jobs.as_slice()
            && job["status"]["completionTime"].is_string()
            && !not.iter().any(|n| job["metadata"]["name"] == *n)
        {
            return Ok(job.clone());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        anyhow::ensure!(!left.is_zero(), "no single new finished job: {jobs:#?}");
        if watch.next_line(left).is_none() && Instant::now() < deadline {
            // The watch ended (the server closed it): follow a new one.
            watch = start_watch()?;
        }
    }
}

#[test]
fn a_cronjob_runs_each_minute_and_keeps_its_history_limit() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    cluster.apply_yaml("tick", &cronjob_yaml("tick", "  successfulJobsHistoryLimit: 1", ""))?;

    // A run by hand, owned by the CronJob like a scheduled one.
    cluster.kubectl_ok(&["create", "job", "by-hand", "--from=cronjob/tick"])?;
    cluster.kubectl_ok(&["wait", "--for=condition=complete", "job/by-hand", "--timeout=60s"])?;
    let by_hand = cluster.get_json(&["job", "by-hand"])?;
    assert_eq!(by_hand["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"], "manual");

    // With a limit of one, the first scheduled run's success deletes the manual run, and the
    // second's deletes the first.
    let deleted = cluster.wait_for_event("tick", "SuccessfulDelete", MINUTES)?;
    assert_eq!(deleted, "Deleted job by-hand");
    let first = only_finished_job(&cluster, "tick", &["by-hand"])?;
    let first_name = first["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let kept = only_finished_job(&cluster, "tick", &["by-hand", &first_name])?;
    // Named after the scheduled minute, annotated with the scheduled time.
    let name = kept["metadata"]["name"].as_str().unwrap_or_default();
    let minute: i64 = name.trim_start_matches("tick-").parse()?;
    let scheduled = jiff::Timestamp::from_second(minute * 60)?.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(kept["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"], scheduled);
    let cronjob = cluster.get_json(&["cronjob", "tick"])?;
    let status = &cronjob["status"];
    assert!(status["lastScheduleTime"].as_str() >= Some(scheduled.as_str()), "{status}");
    assert!(status["lastSuccessfulTime"].is_string(), "{status}");
    let events = cluster.kubectl_ok(&["get", "events", "--field-selector", "involvedObject.name=tick"])?;
    for reason in ["SuccessfulCreate", "SawCompletedJob", "SuccessfulDelete"] {
        assert!(events.contains(reason), "{reason}: {events}");
    }
    let table = cluster.kubectl_ok(&["get", "cj", "tick"])?;
    assert!(
        table.starts_with("NAME   SCHEDULE      TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE\n"),
        "{table}"
    );
    // Deleting the CronJob takes its Jobs (and their pods) with it.
    cluster.kubectl_ok(&["delete", "cronjob", "tick"])?;
    cluster.kubectl_ok(&["wait", "--for=delete", &format!("job/{name}"), "--timeout=60s"])?;
    Ok(())
}

#[test]
fn forbid_skips_a_run_while_the_last_one_is_active() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = started_cluster(work.path())?;
    let yaml = cronjob_yaml("solo", "  concurrencyPolicy: Forbid", "{name: SLEEP_MS, value: '600000'}");
    cluster.apply_yaml("solo", &yaml)?;
    let skipped = cluster.wait_for_event("solo", "JobAlreadyActive", MINUTES)?;
    assert_eq!(
        skipped,
        "Not starting job because prior execution is running and concurrency policy is Forbid"
    );
    let jobs = jobs_of(&cluster, "solo")?;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let cronjob = cluster.get_json(&["cronjob", "solo"])?;
    let active = &cronjob["status"]["active"];
    assert_eq!(active.as_array().map(Vec::len), Some(1), "{cronjob}");
    assert_eq!(active[0]["name"], jobs[0]["metadata"]["name"]);
    Ok(())
}

#[test]
fn bad_schedules_and_time_zones_are_refused() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let cluster = Cluster::up(&work.path().join("cluster"), "node-a")?;
    let out =
        cluster.kubectl(&["create", "cronjob", "bad", "--image=example.local/x:1", "--schedule=* * *"])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"spec.schedule: Invalid value: "* * *": expected exactly 5 fields, found 3: * * *"#),
        "{err}"
    );
    let zoned = cronjob_yaml("zoned", "  timeZone: Mars/Olympus_Mons", "");
    let file = work.path().join("zoned.yaml");
    std::fs::write(&file, zoned)?;
    let out = cluster.kubectl(&["apply", "-f", &file.display().to_string()])?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.timeZone: Invalid value: \"Mars/Olympus_Mons\": unknown time zone"), "{err}");
    // A good one through the typed command (a protobuf body), with upstream's defaults.
    cluster.kubectl_ok(&["create", "cronjob", "good", "--image=example.local/x:1", "--schedule=@hourly"])?;
    let good = cluster.get_json(&["cj", "good"])?;
    assert_eq!(good["spec"]["schedule"], "@hourly");
    assert_eq!(good["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(good["spec"]["successfulJobsHistoryLimit"], 3);
    Ok(())
}
