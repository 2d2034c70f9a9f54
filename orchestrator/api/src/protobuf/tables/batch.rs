//! `batch/v1` Job and CronJob (what `kubectl create job|cronjob` send). Field numbers from upstream's
//! `batch/v1/generated.proto`; every spec field is a pointer in Go, so zero values are kept.
//! Pod failure and success policies are not decoded: a body using them is told to use JSON.

use super::{
    meta::{LABEL_SELECTOR, OBJECT_META},
    objects::OBJECT_REFERENCE,
    pod::POD_TEMPLATE_SPEC,
};
use crate::protobuf::schema::*;

/// `Job`.
pub static JOB: Message = Message {
    name: "Job",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&JOB_SPEC)),
        f(3, "status", msg(&JOB_STATUS)),
    ],
};

/// `JobSpec`.
pub static JOB_SPEC: Message = Message {
    name: "JobSpec",
    fields: &[
        f(1, "parallelism", I32_KEEP),
        f(2, "completions", I32_KEEP),
        f(3, "activeDeadlineSeconds", I64_KEEP),
        f(11, "podFailurePolicy", Ty::Unsupported),
        f(16, "successPolicy", Ty::Unsupported),
        f(7, "backoffLimit", I32_KEEP),
        f(12, "backoffLimitPerIndex", I32_KEEP),
        f(13, "maxFailedIndexes", I32_KEEP),
        f(4, "selector", msg(&LABEL_SELECTOR)),
        f(5, "manualSelector", BOOL_KEEP),
        f(6, "template", msg(&POD_TEMPLATE_SPEC)),
        f(8, "ttlSecondsAfterFinished", I32_KEEP),
        f(9, "completionMode", STR_KEEP),
        f(10, "suspend", BOOL_KEEP),
        f(14, "podReplacementPolicy", STR_KEEP),
        f(15, "managedBy", STR_KEEP),
    ],
};

/// `JobStatus` (sent empty by kubectl; decoded for Go clients that echo an object back).
pub static JOB_STATUS: Message = Message {
    name: "JobStatus",
    fields: &[
        f(1, "conditions", list(&JOB_CONDITION)),
        f(2, "startTime", TIME),
        f(3, "completionTime", TIME),
        f(4, "active", I32),
        f(5, "succeeded", I32),
        f(6, "failed", I32),
        f(11, "terminating", I32_KEEP),
        f(7, "completedIndexes", STR),
        f(10, "failedIndexes", STR_KEEP),
        f(8, "uncountedTerminatedPods", msg(&UNCOUNTED_TERMINATED_PODS)),
        f(9, "ready", I32_KEEP),
    ],
};

/// `JobCondition`.
pub static JOB_CONDITION: Message = Message {
    name: "JobCondition",
    fields: &[
        f(1, "type", STR_KEEP),
        f(2, "status", STR_KEEP),
        f(3, "lastProbeTime", TIME),
        f(4, "lastTransitionTime", TIME),
        f(5, "reason", STR),
        f(6, "message", STR),
    ],
};

/// `UncountedTerminatedPods`.
pub static UNCOUNTED_TERMINATED_PODS: Message =
    Message { name: "UncountedTerminatedPods", fields: &[f(1, "succeeded", STRS), f(2, "failed", STRS)] };

/// `CronJob`.
pub static CRON_JOB: Message = Message {
    name: "CronJob",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&CRON_JOB_SPEC)),
        f(3, "status", msg(&CRON_JOB_STATUS)),
    ],
};

/// `CronJobSpec` (`schedule` has no omitempty; the rest are pointers but `concurrencyPolicy`).
pub static CRON_JOB_SPEC: Message = Message {
    name: "CronJobSpec",
    fields: &[
        f(1, "schedule", STR_KEEP),
        f(8, "timeZone", STR_KEEP),
        f(2, "startingDeadlineSeconds", I64_KEEP),
        f(3, "concurrencyPolicy", STR),
        f(4, "suspend", BOOL_KEEP),
        f(5, "jobTemplate", msg(&JOB_TEMPLATE_SPEC)),
        f(6, "successfulJobsHistoryLimit", I32_KEEP),
        f(7, "failedJobsHistoryLimit", I32_KEEP),
    ],
};

/// `JobTemplateSpec`.
pub static JOB_TEMPLATE_SPEC: Message = Message {
    name: "JobTemplateSpec",
    fields: &[f(1, "metadata", msg(&OBJECT_META)), f(2, "spec", msg(&JOB_SPEC))],
};

/// `CronJobStatus`.
pub static CRON_JOB_STATUS: Message = Message {
    name: "CronJobStatus",
    fields: &[
        f(1, "active", list(&OBJECT_REFERENCE)),
        f(4, "lastScheduleTime", TIME),
        f(5, "lastSuccessfulTime", TIME),
    ],
};
