//! `core/v1` Pod, its template and PodSpec with the pod-level parts: security context,
//! scheduling (affinity, tolerations, topology spread), DNS and resource claims.

use super::{
    container::{
        APP_ARMOR_PROFILE, CONTAINER, EPHEMERAL_CONTAINER, RESOURCE_REQUIREMENTS, SE_LINUX_OPTIONS,
        SECCOMP_PROFILE, WINDOWS_SECURITY_CONTEXT_OPTIONS,
    },
    meta::{LABEL_SELECTOR, OBJECT_META},
    pod_status::POD_STATUS,
    volumes::VOLUME,
};
use crate::protobuf::schema::*;

/// `Pod`.
pub static POD: Message = Message {
    name: "Pod",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&POD_SPEC)),
        f(3, "status", msg(&POD_STATUS)),
    ],
};

/// `PodTemplateSpec`.
pub static POD_TEMPLATE_SPEC: Message = Message {
    name: "PodTemplateSpec",
    fields: &[f(1, "metadata", msg(&OBJECT_META)), f(2, "spec", msg(&POD_SPEC))],
};

/// `PodSpec`. Fields newer than v1.37's API (`workloadRef`) and the v1.37 additions whose
/// numbers we have not taken (`schedulingGroup`, `evictionResponders`) are reported as
/// unsupported when present.
pub static POD_SPEC: Message = Message {
    name: "PodSpec",
    fields: &[
        f(1, "volumes", list(&VOLUME)),
        f(20, "initContainers", list(&CONTAINER)),
        f(2, "containers", list(&CONTAINER)),
        f(34, "ephemeralContainers", list(&EPHEMERAL_CONTAINER)),
        f(3, "restartPolicy", STR),
        f(4, "terminationGracePeriodSeconds", I64_KEEP),
        f(5, "activeDeadlineSeconds", I64_KEEP),
        f(6, "dnsPolicy", STR),
        f(7, "nodeSelector", STR_MAP),
        f(8, "serviceAccountName", STR),
        f(9, "serviceAccount", STR),
        f(21, "automountServiceAccountToken", BOOL_KEEP),
        f(10, "nodeName", STR),
        f(11, "hostNetwork", BOOL),
        f(12, "hostPID", BOOL),
        f(13, "hostIPC", BOOL),
        f(27, "shareProcessNamespace", BOOL_KEEP),
        f(14, "securityContext", msg(&POD_SECURITY_CONTEXT)),
        f(15, "imagePullSecrets", list(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", STR),
        f(17, "subdomain", STR),
        f(18, "affinity", msg(&AFFINITY)),
        f(19, "schedulerName", STR),
        f(22, "tolerations", list(&TOLERATION)),
        f(23, "hostAliases", list(&HOST_ALIAS)),
        f(24, "priorityClassName", STR),
        f(25, "priority", I32_KEEP),
        f(26, "dnsConfig", msg(&POD_DNS_CONFIG)),
        f(28, "readinessGates", list(&POD_READINESS_GATE)),
        f(29, "runtimeClassName", STR_KEEP),
        f(30, "enableServiceLinks", BOOL_KEEP),
        f(31, "preemptionPolicy", STR_KEEP),
        f(32, "overhead", QTY_MAP),
        f(33, "topologySpreadConstraints", list(&TOPOLOGY_SPREAD_CONSTRAINT)),
        f(35, "setHostnameAsFQDN", BOOL_KEEP),
        f(36, "os", msg(&POD_OS)),
        f(37, "hostUsers", BOOL_KEEP),
        f(38, "schedulingGates", list(&POD_SCHEDULING_GATE)),
        f(39, "resourceClaims", list(&POD_RESOURCE_CLAIM)),
        f(40, "resources", msg(&RESOURCE_REQUIREMENTS)),
        f(41, "hostnameOverride", STR_KEEP),
    ],
};

/// `LocalObjectReference`.
pub static LOCAL_OBJECT_REFERENCE: Message =
    Message { name: "LocalObjectReference", fields: &[f(1, "name", STR)] };

/// `PodSecurityContext`.
pub static POD_SECURITY_CONTEXT: Message = Message {
    name: "PodSecurityContext",
    fields: &[
        f(1, "seLinuxOptions", msg(&SE_LINUX_OPTIONS)),
        f(8, "windowsOptions", msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS)),
        f(2, "runAsUser", I64_KEEP),
        f(6, "runAsGroup", I64_KEEP),
        f(3, "runAsNonRoot", BOOL_KEEP),
        f(4, "supplementalGroups", I64S),
        f(12, "supplementalGroupsPolicy", STR_KEEP),
        f(5, "fsGroup", I64_KEEP),
        f(7, "sysctls", list(&SYSCTL)),
        f(9, "fsGroupChangePolicy", STR_KEEP),
        f(10, "seccompProfile", msg(&SECCOMP_PROFILE)),
        f(11, "appArmorProfile", msg(&APP_ARMOR_PROFILE)),
        f(13, "seLinuxChangePolicy", STR_KEEP),
    ],
};

/// `Sysctl`.
pub static SYSCTL: Message =
    Message { name: "Sysctl", fields: &[f(1, "name", STR_KEEP), f(2, "value", STR_KEEP)] };

/// `Affinity`.
pub static AFFINITY: Message = Message {
    name: "Affinity",
    fields: &[
        f(1, "nodeAffinity", msg(&NODE_AFFINITY)),
        f(2, "podAffinity", msg(&POD_AFFINITY)),
        f(3, "podAntiAffinity", msg(&POD_ANTI_AFFINITY)),
    ],
};

/// `NodeAffinity`.
pub static NODE_AFFINITY: Message = Message {
    name: "NodeAffinity",
    fields: &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", msg(&NODE_SELECTOR)),
        f(2, "preferredDuringSchedulingIgnoredDuringExecution", list(&PREFERRED_SCHEDULING_TERM)),
    ],
};

/// `NodeSelector`.
pub static NODE_SELECTOR: Message =
    Message { name: "NodeSelector", fields: &[f(1, "nodeSelectorTerms", list(&NODE_SELECTOR_TERM))] };

/// `NodeSelectorTerm`.
pub static NODE_SELECTOR_TERM: Message = Message {
    name: "NodeSelectorTerm",
    fields: &[
        f(1, "matchExpressions", list(&NODE_SELECTOR_REQUIREMENT)),
        f(2, "matchFields", list(&NODE_SELECTOR_REQUIREMENT)),
    ],
};

/// `NodeSelectorRequirement`.
pub static NODE_SELECTOR_REQUIREMENT: Message = Message {
    name: "NodeSelectorRequirement",
    fields: &[f(1, "key", STR_KEEP), f(2, "operator", STR_KEEP), f(3, "values", STRS)],
};

/// `PreferredSchedulingTerm`.
pub static PREFERRED_SCHEDULING_TERM: Message = Message {
    name: "PreferredSchedulingTerm",
    fields: &[f(1, "weight", I32_KEEP), f(2, "preference", msg(&NODE_SELECTOR_TERM))],
};

/// `PodAffinity`.
pub static POD_AFFINITY: Message = Message {
    name: "PodAffinity",
    fields: &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", list(&POD_AFFINITY_TERM)),
        f(2, "preferredDuringSchedulingIgnoredDuringExecution", list(&WEIGHTED_POD_AFFINITY_TERM)),
    ],
};

/// `PodAntiAffinity`.
pub static POD_ANTI_AFFINITY: Message = Message {
    name: "PodAntiAffinity",
    fields: &[
        f(1, "requiredDuringSchedulingIgnoredDuringExecution", list(&POD_AFFINITY_TERM)),
        f(2, "preferredDuringSchedulingIgnoredDuringExecution", list(&WEIGHTED_POD_AFFINITY_TERM)),
    ],
};

/// `PodAffinityTerm`.
pub static POD_AFFINITY_TERM: Message = Message {
    name: "PodAffinityTerm",
    fields: &[
        f(1, "labelSelector", msg(&LABEL_SELECTOR)),
        f(2, "namespaces", STRS),
        f(3, "topologyKey", STR_KEEP),
        f(4, "namespaceSelector", msg(&LABEL_SELECTOR)),
        f(5, "matchLabelKeys", STRS),
        f(6, "mismatchLabelKeys", STRS),
    ],
};

/// `WeightedPodAffinityTerm`.
pub static WEIGHTED_POD_AFFINITY_TERM: Message = Message {
    name: "WeightedPodAffinityTerm",
    fields: &[f(1, "weight", I32_KEEP), f(2, "podAffinityTerm", msg(&POD_AFFINITY_TERM))],
};

/// `Toleration`.
pub static TOLERATION: Message = Message {
    name: "Toleration",
    fields: &[
        f(1, "key", STR),
        f(2, "operator", STR),
        f(3, "value", STR),
        f(4, "effect", STR),
        f(5, "tolerationSeconds", I64_KEEP),
    ],
};

/// `HostAlias`.
pub static HOST_ALIAS: Message =
    Message { name: "HostAlias", fields: &[f(1, "ip", STR_KEEP), f(2, "hostnames", STRS)] };

/// `PodDNSConfig`.
pub static POD_DNS_CONFIG: Message = Message {
    name: "PodDNSConfig",
    fields: &[
        f(1, "nameservers", STRS),
        f(2, "searches", STRS),
        f(3, "options", list(&POD_DNS_CONFIG_OPTION)),
    ],
};

/// `PodDNSConfigOption`.
pub static POD_DNS_CONFIG_OPTION: Message =
    Message { name: "PodDNSConfigOption", fields: &[f(1, "name", STR), f(2, "value", STR_KEEP)] };

/// `PodReadinessGate`.
pub static POD_READINESS_GATE: Message =
    Message { name: "PodReadinessGate", fields: &[f(1, "conditionType", STR_KEEP)] };

/// `TopologySpreadConstraint`.
pub static TOPOLOGY_SPREAD_CONSTRAINT: Message = Message {
    name: "TopologySpreadConstraint",
    fields: &[
        f(1, "maxSkew", I32_KEEP),
        f(2, "topologyKey", STR_KEEP),
        f(3, "whenUnsatisfiable", STR_KEEP),
        f(4, "labelSelector", msg(&LABEL_SELECTOR)),
        f(5, "minDomains", I32_KEEP),
        f(6, "nodeAffinityPolicy", STR_KEEP),
        f(7, "nodeTaintsPolicy", STR_KEEP),
        f(8, "matchLabelKeys", STRS),
    ],
};

/// `PodOS`.
pub static POD_OS: Message = Message { name: "PodOS", fields: &[f(1, "name", STR_KEEP)] };

/// `PodSchedulingGate`.
pub static POD_SCHEDULING_GATE: Message =
    Message { name: "PodSchedulingGate", fields: &[f(1, "name", STR_KEEP)] };

/// `PodResourceClaim`.
pub static POD_RESOURCE_CLAIM: Message = Message {
    name: "PodResourceClaim",
    fields: &[
        f(1, "name", STR_KEEP),
        f(3, "resourceClaimName", STR_KEEP),
        f(4, "resourceClaimTemplateName", STR_KEEP),
    ],
};
