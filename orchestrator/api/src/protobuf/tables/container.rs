//! `core/v1` Container and what it holds: ports, environment, resources, mounts, probes,
//! lifecycle hooks and the container security context.

use super::pod::LOCAL_OBJECT_REFERENCE;
use crate::protobuf::schema::*;

/// `Container` (also the inlined body of an `EphemeralContainer`: the same field numbers).
pub static CONTAINER: Message = Message {
    name: "Container",
    fields: &[
        f(1, "name", STR_KEEP),
        f(2, "image", STR),
        f(3, "command", STRS),
        f(4, "args", STRS),
        f(5, "workingDir", STR),
        f(6, "ports", list(&CONTAINER_PORT)),
        f(19, "envFrom", list(&ENV_FROM_SOURCE)),
        f(7, "env", list(&ENV_VAR)),
        f(8, "resources", msg(&RESOURCE_REQUIREMENTS)),
        f(23, "resizePolicy", list(&CONTAINER_RESIZE_POLICY)),
        f(24, "restartPolicy", STR_KEEP),
        f(25, "restartPolicyRules", list(&CONTAINER_RESTART_RULE)),
        f(9, "volumeMounts", list(&VOLUME_MOUNT)),
        f(21, "volumeDevices", list(&VOLUME_DEVICE)),
        f(10, "livenessProbe", msg(&PROBE)),
        f(11, "readinessProbe", msg(&PROBE)),
        f(22, "startupProbe", msg(&PROBE)),
        f(12, "lifecycle", msg(&LIFECYCLE)),
        f(13, "terminationMessagePath", STR),
        f(20, "terminationMessagePolicy", STR),
        f(14, "imagePullPolicy", STR),
        f(15, "securityContext", msg(&SECURITY_CONTEXT)),
        f(16, "stdin", BOOL),
        f(17, "stdinOnce", BOOL),
        f(18, "tty", BOOL),
    ],
};

/// `EphemeralContainer`: the container fields inlined, plus the target.
pub static EPHEMERAL_CONTAINER: Message = Message {
    name: "EphemeralContainer",
    fields: &[f(1, "", inline(&CONTAINER)), f(2, "targetContainerName", STR)],
};

/// `ContainerPort`.
pub static CONTAINER_PORT: Message = Message {
    name: "ContainerPort",
    fields: &[
        f(1, "name", STR),
        f(2, "hostPort", I32),
        f(3, "containerPort", I32_KEEP),
        f(4, "protocol", STR),
        f(5, "hostIP", STR),
    ],
};

/// `EnvVar`.
pub static ENV_VAR: Message = Message {
    name: "EnvVar",
    fields: &[f(1, "name", STR_KEEP), f(2, "value", STR), f(3, "valueFrom", msg(&ENV_VAR_SOURCE))],
};

/// `EnvVarSource`.
pub static ENV_VAR_SOURCE: Message = Message {
    name: "EnvVarSource",
    fields: &[
        f(1, "fieldRef", msg(&OBJECT_FIELD_SELECTOR)),
        f(2, "resourceFieldRef", msg(&RESOURCE_FIELD_SELECTOR)),
        f(3, "configMapKeyRef", msg(&CONFIG_MAP_KEY_SELECTOR)),
        f(4, "secretKeyRef", msg(&SECRET_KEY_SELECTOR)),
        f(5, "fileKeyRef", msg(&FILE_KEY_SELECTOR)),
    ],
};

/// `ObjectFieldSelector`.
pub static OBJECT_FIELD_SELECTOR: Message =
    Message { name: "ObjectFieldSelector", fields: &[f(1, "apiVersion", STR), f(2, "fieldPath", STR_KEEP)] };

/// `ResourceFieldSelector`.
pub static RESOURCE_FIELD_SELECTOR: Message = Message {
    name: "ResourceFieldSelector",
    fields: &[f(1, "containerName", STR), f(2, "resource", STR_KEEP), f(3, "divisor", QTY)],
};

/// `ConfigMapKeySelector`.
pub static CONFIG_MAP_KEY_SELECTOR: Message = Message {
    name: "ConfigMapKeySelector",
    fields: &[f(1, "", inline(&LOCAL_OBJECT_REFERENCE)), f(2, "key", STR_KEEP), f(3, "optional", BOOL_KEEP)],
};

/// `SecretKeySelector`.
pub static SECRET_KEY_SELECTOR: Message = Message {
    name: "SecretKeySelector",
    fields: &[f(1, "", inline(&LOCAL_OBJECT_REFERENCE)), f(2, "key", STR_KEEP), f(3, "optional", BOOL_KEEP)],
};

/// `FileKeySelector`.
pub static FILE_KEY_SELECTOR: Message = Message {
    name: "FileKeySelector",
    fields: &[
        f(1, "volumeName", STR_KEEP),
        f(2, "path", STR_KEEP),
        f(3, "key", STR_KEEP),
        f(4, "optional", BOOL_KEEP),
    ],
};

/// `EnvFromSource`.
pub static ENV_FROM_SOURCE: Message = Message {
    name: "EnvFromSource",
    fields: &[
        f(1, "prefix", STR),
        f(2, "configMapRef", msg(&CONFIG_MAP_ENV_SOURCE)),
        f(3, "secretRef", msg(&SECRET_ENV_SOURCE)),
    ],
};

/// `ConfigMapEnvSource`.
pub static CONFIG_MAP_ENV_SOURCE: Message = Message {
    name: "ConfigMapEnvSource",
    fields: &[f(1, "", inline(&LOCAL_OBJECT_REFERENCE)), f(2, "optional", BOOL_KEEP)],
};

/// `SecretEnvSource`.
pub static SECRET_ENV_SOURCE: Message = Message {
    name: "SecretEnvSource",
    fields: &[f(1, "", inline(&LOCAL_OBJECT_REFERENCE)), f(2, "optional", BOOL_KEEP)],
};

/// `ResourceRequirements`.
pub static RESOURCE_REQUIREMENTS: Message = Message {
    name: "ResourceRequirements",
    fields: &[f(1, "limits", QTY_MAP), f(2, "requests", QTY_MAP), f(3, "claims", list(&RESOURCE_CLAIM))],
};

/// `ResourceClaim` (a container's use of a pod resource claim).
pub static RESOURCE_CLAIM: Message =
    Message { name: "ResourceClaim", fields: &[f(1, "name", STR_KEEP), f(2, "request", STR)] };

/// `ContainerResizePolicy`.
pub static CONTAINER_RESIZE_POLICY: Message = Message {
    name: "ContainerResizePolicy",
    fields: &[f(1, "resourceName", STR_KEEP), f(2, "restartPolicy", STR_KEEP)],
};

/// `ContainerRestartRule`.
pub static CONTAINER_RESTART_RULE: Message = Message {
    name: "ContainerRestartRule",
    fields: &[f(1, "action", STR_KEEP), f(2, "exitCodes", msg(&CONTAINER_RESTART_RULE_ON_EXIT_CODES))],
};

/// `ContainerRestartRuleOnExitCodes`.
pub static CONTAINER_RESTART_RULE_ON_EXIT_CODES: Message = Message {
    name: "ContainerRestartRuleOnExitCodes",
    fields: &[f(1, "operator", STR_KEEP), f(2, "values", I32S)],
};

/// `VolumeMount`.
pub static VOLUME_MOUNT: Message = Message {
    name: "VolumeMount",
    fields: &[
        f(1, "name", STR_KEEP),
        f(2, "readOnly", BOOL),
        f(7, "recursiveReadOnly", STR_KEEP),
        f(3, "mountPath", STR_KEEP),
        f(4, "subPath", STR),
        f(5, "mountPropagation", STR_KEEP),
        f(6, "subPathExpr", STR),
    ],
};

/// `VolumeDevice`.
pub static VOLUME_DEVICE: Message =
    Message { name: "VolumeDevice", fields: &[f(1, "name", STR_KEEP), f(2, "devicePath", STR_KEEP)] };

/// `Probe`: the handler is inlined.
pub static PROBE: Message = Message {
    name: "Probe",
    fields: &[
        f(1, "", inline(&PROBE_HANDLER)),
        f(2, "initialDelaySeconds", I32),
        f(3, "timeoutSeconds", I32),
        f(4, "periodSeconds", I32),
        f(5, "successThreshold", I32),
        f(6, "failureThreshold", I32),
        f(7, "terminationGracePeriodSeconds", I64_KEEP),
    ],
};

/// `ProbeHandler`.
pub static PROBE_HANDLER: Message = Message {
    name: "ProbeHandler",
    fields: &[
        f(1, "exec", msg(&EXEC_ACTION)),
        f(2, "httpGet", msg(&HTTP_GET_ACTION)),
        f(3, "tcpSocket", msg(&TCP_SOCKET_ACTION)),
        f(4, "grpc", msg(&GRPC_ACTION)),
    ],
};

/// `ExecAction`.
pub static EXEC_ACTION: Message = Message { name: "ExecAction", fields: &[f(1, "command", STRS)] };

/// `HTTPGetAction`.
pub static HTTP_GET_ACTION: Message = Message {
    name: "HTTPGetAction",
    fields: &[
        f(1, "path", STR),
        f(2, "port", INTSTR),
        f(3, "host", STR),
        f(4, "scheme", STR),
        f(5, "httpHeaders", list(&HTTP_HEADER)),
    ],
};

/// `HTTPHeader`.
pub static HTTP_HEADER: Message =
    Message { name: "HTTPHeader", fields: &[f(1, "name", STR_KEEP), f(2, "value", STR_KEEP)] };

/// `TCPSocketAction`.
pub static TCP_SOCKET_ACTION: Message =
    Message { name: "TCPSocketAction", fields: &[f(1, "port", INTSTR), f(2, "host", STR)] };

/// `GRPCAction`.
pub static GRPC_ACTION: Message =
    Message { name: "GRPCAction", fields: &[f(1, "port", I32_KEEP), f(2, "service", STR_KEEP)] };

/// `Lifecycle`.
pub static LIFECYCLE: Message = Message {
    name: "Lifecycle",
    fields: &[
        f(1, "postStart", msg(&LIFECYCLE_HANDLER)),
        f(2, "preStop", msg(&LIFECYCLE_HANDLER)),
        f(3, "stopSignal", STR_KEEP),
    ],
};

/// `LifecycleHandler`.
pub static LIFECYCLE_HANDLER: Message = Message {
    name: "LifecycleHandler",
    fields: &[
        f(1, "exec", msg(&EXEC_ACTION)),
        f(2, "httpGet", msg(&HTTP_GET_ACTION)),
        f(3, "tcpSocket", msg(&TCP_SOCKET_ACTION)),
        f(4, "sleep", msg(&SLEEP_ACTION)),
    ],
};

/// `SleepAction`.
pub static SLEEP_ACTION: Message = Message { name: "SleepAction", fields: &[f(1, "seconds", I64_KEEP)] };

/// `SecurityContext` (per container). Field 13 (`ulimits`) is not part of the v1.37 API.
pub static SECURITY_CONTEXT: Message = Message {
    name: "SecurityContext",
    fields: &[
        f(1, "capabilities", msg(&CAPABILITIES)),
        f(2, "privileged", BOOL_KEEP),
        f(3, "seLinuxOptions", msg(&SE_LINUX_OPTIONS)),
        f(10, "windowsOptions", msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        f(4, "runAsUser", I64_KEEP),
        f(8, "runAsGroup", I64_KEEP),
        f(5, "runAsNonRoot", BOOL_KEEP),
        f(6, "readOnlyRootFilesystem", BOOL_KEEP),
        f(7, "allowPrivilegeEscalation", BOOL_KEEP),
        f(9, "procMount", STR_KEEP),
        f(11, "seccompProfile", msg(&SECCOMP_PROFILE)),
        f(12, "appArmorProfile", msg(&APP_ARMOR_PROFILE)),
    ],
};

/// `Capabilities`.
pub static CAPABILITIES: Message =
    Message { name: "Capabilities", fields: &[f(1, "add", STRS), f(2, "drop", STRS)] };

/// `SELinuxOptions`.
pub static SE_LINUX_OPTIONS: Message = Message {
    name: "SELinuxOptions",
    fields: &[f(1, "user", STR), f(2, "role", STR), f(3, "type", STR), f(4, "level", STR)],
};

/// `WindowsSecurityContextOptions`.
pub static WINDOWS_SECURITY_CONTEXT_OPTIONS: Message = Message {
    name: "WindowsSecurityContextOptions",
    fields: &[
        f(1, "gmsaCredentialSpecName", STR_KEEP),
        f(2, "gmsaCredentialSpec", STR_KEEP),
        f(3, "runAsUserName", STR_KEEP),
        f(4, "hostProcess", BOOL_KEEP),
    ],
};

/// `SeccompProfile`.
pub static SECCOMP_PROFILE: Message =
    Message { name: "SeccompProfile", fields: &[f(1, "type", STR_KEEP), f(2, "localhostProfile", STR_KEEP)] };

/// `AppArmorProfile`.
pub static APP_ARMOR_PROFILE: Message = Message {
    name: "AppArmorProfile",
    fields: &[f(1, "type", STR_KEEP), f(2, "localhostProfile", STR_KEEP)],
};
