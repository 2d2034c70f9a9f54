//! `apps/v1` Deployment and ReplicaSet, and `autoscaling/v1` Scale (their `/scale` body).

use super::{
    meta::{LABEL_SELECTOR, OBJECT_META},
    pod::POD_TEMPLATE_SPEC,
};
use crate::protobuf::schema::*;

/// `Deployment`.
pub static DEPLOYMENT: Message = Message {
    name: "Deployment",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&DEPLOYMENT_SPEC)),
        f(3, "status", msg(&DEPLOYMENT_STATUS)),
    ],
};

/// `DeploymentSpec` (field 10, `podReplacementPolicy`, is not part of the v1.37 API).
pub static DEPLOYMENT_SPEC: Message = Message {
    name: "DeploymentSpec",
    fields: &[
        f(1, "replicas", I32_KEEP),
        f(2, "selector", msg(&LABEL_SELECTOR)),
        f(3, "template", msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", I32),
        f(6, "revisionHistoryLimit", I32_KEEP),
        f(7, "paused", BOOL),
        f(9, "progressDeadlineSeconds", I32_KEEP),
    ],
};

/// `DeploymentStrategy`.
pub static DEPLOYMENT_STRATEGY: Message = Message {
    name: "DeploymentStrategy",
    fields: &[f(1, "type", STR), f(2, "rollingUpdate", msg(&ROLLING_UPDATE_DEPLOYMENT))],
};

/// `RollingUpdateDeployment` (both fields are pointers: present means set).
pub static ROLLING_UPDATE_DEPLOYMENT: Message = Message {
    name: "RollingUpdateDeployment",
    fields: &[f(1, "maxUnavailable", INTSTR), f(2, "maxSurge", INTSTR)],
};

/// `DeploymentStatus`.
pub static DEPLOYMENT_STATUS: Message = Message {
    name: "DeploymentStatus",
    fields: &[
        f(1, "observedGeneration", I64),
        f(2, "replicas", I32),
        f(3, "updatedReplicas", I32),
        f(7, "readyReplicas", I32),
        f(4, "availableReplicas", I32),
        f(5, "unavailableReplicas", I32),
        f(9, "terminatingReplicas", I32_KEEP),
        f(6, "conditions", list(&DEPLOYMENT_CONDITION)),
        f(8, "collisionCount", I32_KEEP),
    ],
};

/// `DeploymentCondition`.
pub static DEPLOYMENT_CONDITION: Message = Message {
    name: "DeploymentCondition",
    fields: &[
        f(1, "type", STR_KEEP),
        f(2, "status", STR_KEEP),
        f(6, "lastUpdateTime", TIME),
        f(7, "lastTransitionTime", TIME),
        f(4, "reason", STR),
        f(5, "message", STR),
    ],
};

/// `ReplicaSet`.
pub static REPLICA_SET: Message = Message {
    name: "ReplicaSet",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&REPLICA_SET_SPEC)),
        f(3, "status", msg(&REPLICA_SET_STATUS)),
    ],
};

/// `ReplicaSetSpec`.
pub static REPLICA_SET_SPEC: Message = Message {
    name: "ReplicaSetSpec",
    fields: &[
        f(1, "replicas", I32_KEEP),
        f(4, "minReadySeconds", I32),
        f(2, "selector", msg(&LABEL_SELECTOR)),
        f(3, "template", msg(&POD_TEMPLATE_SPEC)),
    ],
};

/// `ReplicaSetStatus`.
pub static REPLICA_SET_STATUS: Message = Message {
    name: "ReplicaSetStatus",
    fields: &[
        f(1, "replicas", I32_KEEP),
        f(2, "fullyLabeledReplicas", I32),
        f(4, "readyReplicas", I32),
        f(5, "availableReplicas", I32),
        f(7, "terminatingReplicas", I32_KEEP),
        f(3, "observedGeneration", I64),
        f(6, "conditions", list(&REPLICA_SET_CONDITION)),
    ],
};

/// `ReplicaSetCondition`.
pub static REPLICA_SET_CONDITION: Message = Message {
    name: "ReplicaSetCondition",
    fields: &[
        f(1, "type", STR_KEEP),
        f(2, "status", STR_KEEP),
        f(3, "lastTransitionTime", TIME),
        f(4, "reason", STR),
        f(5, "message", STR),
    ],
};

/// `autoscaling/v1` `Scale`.
pub static SCALE: Message = Message {
    name: "Scale",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&SCALE_SPEC)),
        f(3, "status", msg(&SCALE_STATUS)),
    ],
};

/// `autoscaling/v1` `ScaleSpec`.
pub static SCALE_SPEC: Message = Message { name: "ScaleSpec", fields: &[f(1, "replicas", I32)] };

/// `autoscaling/v1` `ScaleStatus`.
pub static SCALE_STATUS: Message =
    Message { name: "ScaleStatus", fields: &[f(1, "replicas", I32_KEEP), f(2, "selector", STR)] };
