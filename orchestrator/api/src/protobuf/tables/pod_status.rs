//! `core/v1` PodStatus and container statuses. A pod created by a Go client carries an empty
//! status whose non-pointer strings are still on the wire, so PodStatus must be known even for
//! a create; status writes from Go agents use the rest.

use super::container::RESOURCE_REQUIREMENTS;
use crate::protobuf::schema::*;

/// `PodStatus`.
pub static POD_STATUS: Message = Message {
    name: "PodStatus",
    fields: &[
        f(17, "observedGeneration", I64),
        f(1, "phase", STR),
        f(2, "conditions", list(&POD_CONDITION)),
        f(3, "message", STR),
        f(4, "reason", STR),
        f(11, "nominatedNodeName", STR),
        f(5, "hostIP", STR),
        f(16, "hostIPs", list(&HOST_IP)),
        f(6, "podIP", STR),
        f(12, "podIPs", list(&POD_IP)),
        f(7, "startTime", TIME),
        f(10, "initContainerStatuses", list(&CONTAINER_STATUS)),
        f(8, "containerStatuses", list(&CONTAINER_STATUS)),
        f(9, "qosClass", STR),
        f(13, "ephemeralContainerStatuses", list(&CONTAINER_STATUS)),
        f(14, "resize", STR),
        f(15, "resourceClaimStatuses", list(&POD_RESOURCE_CLAIM_STATUS)),
        f(18, "extendedResourceClaimStatus", msg(&POD_EXTENDED_RESOURCE_CLAIM_STATUS)),
        f(19, "allocatedResources", QTY_MAP),
        f(20, "resources", msg(&RESOURCE_REQUIREMENTS)),
    ],
};

/// `PodCondition`.
pub static POD_CONDITION: Message = Message {
    name: "PodCondition",
    fields: &[
        f(1, "type", STR_KEEP),
        f(7, "observedGeneration", I64),
        f(2, "status", STR_KEEP),
        f(3, "lastProbeTime", TIME),
        f(4, "lastTransitionTime", TIME),
        f(5, "reason", STR),
        f(6, "message", STR),
    ],
};

/// `HostIP`.
pub static HOST_IP: Message = Message { name: "HostIP", fields: &[f(1, "ip", STR_KEEP)] };

/// `PodIP`.
pub static POD_IP: Message = Message { name: "PodIP", fields: &[f(1, "ip", STR_KEEP)] };

/// `ContainerStatus`.
pub static CONTAINER_STATUS: Message = Message {
    name: "ContainerStatus",
    fields: &[
        f(1, "name", STR_KEEP),
        f(2, "state", msg(&CONTAINER_STATE)),
        f(3, "lastState", msg(&CONTAINER_STATE)),
        f(4, "ready", BOOL_KEEP),
        f(5, "restartCount", I32_KEEP),
        f(6, "image", STR_KEEP),
        f(7, "imageID", STR_KEEP),
        f(8, "containerID", STR),
        f(9, "started", BOOL_KEEP),
        f(10, "allocatedResources", QTY_MAP),
        f(11, "resources", msg(&RESOURCE_REQUIREMENTS)),
        f(12, "volumeMounts", list(&VOLUME_MOUNT_STATUS)),
        f(13, "user", msg(&CONTAINER_USER)),
        f(14, "allocatedResourcesStatus", list(&RESOURCE_STATUS)),
        f(15, "stopSignal", STR_KEEP),
    ],
};

/// `ContainerState`.
pub static CONTAINER_STATE: Message = Message {
    name: "ContainerState",
    fields: &[
        f(1, "waiting", msg(&CONTAINER_STATE_WAITING)),
        f(2, "running", msg(&CONTAINER_STATE_RUNNING)),
        f(3, "terminated", msg(&CONTAINER_STATE_TERMINATED)),
    ],
};

/// `ContainerStateWaiting`.
pub static CONTAINER_STATE_WAITING: Message =
    Message { name: "ContainerStateWaiting", fields: &[f(1, "reason", STR), f(2, "message", STR)] };

/// `ContainerStateRunning`.
pub static CONTAINER_STATE_RUNNING: Message =
    Message { name: "ContainerStateRunning", fields: &[f(1, "startedAt", TIME)] };

/// `ContainerStateTerminated`.
pub static CONTAINER_STATE_TERMINATED: Message = Message {
    name: "ContainerStateTerminated",
    fields: &[
        f(1, "exitCode", I32_KEEP),
        f(2, "signal", I32),
        f(3, "reason", STR),
        f(4, "message", STR),
        f(5, "startedAt", TIME),
        f(6, "finishedAt", TIME),
        f(7, "containerID", STR),
    ],
};

/// `VolumeMountStatus`.
pub static VOLUME_MOUNT_STATUS: Message = Message {
    name: "VolumeMountStatus",
    fields: &[
        f(1, "name", STR_KEEP),
        f(2, "mountPath", STR_KEEP),
        f(3, "readOnly", BOOL),
        f(4, "recursiveReadOnly", STR_KEEP),
        f(5, "volumeStatus", msg(&VOLUME_STATUS)),
    ],
};

/// `VolumeStatus`.
pub static VOLUME_STATUS: Message =
    Message { name: "VolumeStatus", fields: &[f(1, "image", msg(&IMAGE_VOLUME_STATUS))] };

/// `ImageVolumeStatus`.
pub static IMAGE_VOLUME_STATUS: Message =
    Message { name: "ImageVolumeStatus", fields: &[f(1, "imageRef", STR_KEEP)] };

/// `ContainerUser`.
pub static CONTAINER_USER: Message =
    Message { name: "ContainerUser", fields: &[f(1, "linux", msg(&LINUX_CONTAINER_USER))] };

/// `LinuxContainerUser`.
pub static LINUX_CONTAINER_USER: Message = Message {
    name: "LinuxContainerUser",
    fields: &[f(1, "uid", I64_KEEP), f(2, "gid", I64_KEEP), f(3, "supplementalGroups", I64S)],
};

/// `ResourceStatus`.
pub static RESOURCE_STATUS: Message = Message {
    name: "ResourceStatus",
    fields: &[f(1, "name", STR_KEEP), f(2, "resources", list(&RESOURCE_HEALTH))],
};

/// `ResourceHealth`.
pub static RESOURCE_HEALTH: Message = Message {
    name: "ResourceHealth",
    fields: &[f(1, "resourceID", STR_KEEP), f(2, "health", STR), f(6, "message", STR_KEEP)],
};

/// `PodResourceClaimStatus`.
pub static POD_RESOURCE_CLAIM_STATUS: Message = Message {
    name: "PodResourceClaimStatus",
    fields: &[f(1, "name", STR_KEEP), f(2, "resourceClaimName", STR_KEEP)],
};

/// `PodExtendedResourceClaimStatus`.
pub static POD_EXTENDED_RESOURCE_CLAIM_STATUS: Message = Message {
    name: "PodExtendedResourceClaimStatus",
    fields: &[
        f(1, "requestMappings", list(&CONTAINER_EXTENDED_RESOURCE_REQUEST)),
        f(2, "resourceClaimName", STR_KEEP),
    ],
};

/// `ContainerExtendedResourceRequest`.
pub static CONTAINER_EXTENDED_RESOURCE_REQUEST: Message = Message {
    name: "ContainerExtendedResourceRequest",
    fields: &[f(1, "containerName", STR_KEEP), f(2, "resourceName", STR_KEEP), f(3, "requestName", STR_KEEP)],
};
