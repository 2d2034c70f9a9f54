//! `core/v1` objects other than Pod: Namespace, ConfigMap, Secret, Service, Event and Binding.

use super::meta::{CONDITION, OBJECT_META};
use crate::protobuf::schema::*;

/// `Namespace`.
pub static NAMESPACE: Message = Message {
    name: "Namespace",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&NAMESPACE_SPEC)),
        f(3, "status", msg(&NAMESPACE_STATUS)),
    ],
};

/// `NamespaceSpec`.
pub static NAMESPACE_SPEC: Message = Message { name: "NamespaceSpec", fields: &[f(1, "finalizers", STRS)] };

/// `NamespaceStatus`.
pub static NAMESPACE_STATUS: Message = Message {
    name: "NamespaceStatus",
    fields: &[f(1, "phase", STR), f(2, "conditions", list(&NAMESPACE_CONDITION))],
};

/// `NamespaceCondition`.
pub static NAMESPACE_CONDITION: Message = Message {
    name: "NamespaceCondition",
    fields: &[
        f(1, "type", STR_KEEP),
        f(2, "status", STR_KEEP),
        f(4, "lastTransitionTime", TIME),
        f(5, "reason", STR),
        f(6, "message", STR),
    ],
};

/// `ConfigMap`.
pub static CONFIG_MAP: Message = Message {
    name: "ConfigMap",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(4, "immutable", BOOL_KEEP),
        f(2, "data", STR_MAP),
        f(3, "binaryData", BYTES_MAP),
    ],
};

/// `Secret`.
pub static SECRET: Message = Message {
    name: "Secret",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(5, "immutable", BOOL_KEEP),
        f(2, "data", BYTES_MAP),
        f(4, "stringData", STR_MAP),
        f(3, "type", STR),
    ],
};

/// `Service`.
pub static SERVICE: Message = Message {
    name: "Service",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&SERVICE_SPEC)),
        f(3, "status", msg(&SERVICE_STATUS)),
    ],
};

/// `ServiceSpec`.
pub static SERVICE_SPEC: Message = Message {
    name: "ServiceSpec",
    fields: &[
        f(1, "ports", list(&SERVICE_PORT)),
        f(2, "selector", STR_MAP),
        f(3, "clusterIP", STR),
        f(18, "clusterIPs", STRS),
        f(4, "type", STR),
        f(5, "externalIPs", STRS),
        f(7, "sessionAffinity", STR),
        f(8, "loadBalancerIP", STR),
        f(9, "loadBalancerSourceRanges", STRS),
        f(10, "externalName", STR),
        f(11, "externalTrafficPolicy", STR),
        f(12, "healthCheckNodePort", I32),
        f(13, "publishNotReadyAddresses", BOOL),
        f(14, "sessionAffinityConfig", msg(&SESSION_AFFINITY_CONFIG)),
        f(19, "ipFamilies", STRS),
        f(17, "ipFamilyPolicy", STR_KEEP),
        f(20, "allocateLoadBalancerNodePorts", BOOL_KEEP),
        f(21, "loadBalancerClass", STR_KEEP),
        f(22, "internalTrafficPolicy", STR_KEEP),
        f(23, "trafficDistribution", STR_KEEP),
    ],
};

/// `ServicePort`.
pub static SERVICE_PORT: Message = Message {
    name: "ServicePort",
    fields: &[
        f(1, "name", STR),
        f(2, "protocol", STR),
        f(6, "appProtocol", STR_KEEP),
        f(3, "port", I32_KEEP),
        f(4, "targetPort", INTSTR),
        f(5, "nodePort", I32),
    ],
};

/// `SessionAffinityConfig`.
pub static SESSION_AFFINITY_CONFIG: Message =
    Message { name: "SessionAffinityConfig", fields: &[f(1, "clientIP", msg(&CLIENT_IP_CONFIG))] };

/// `ClientIPConfig`.
pub static CLIENT_IP_CONFIG: Message =
    Message { name: "ClientIPConfig", fields: &[f(1, "timeoutSeconds", I32_KEEP)] };

/// `ServiceStatus`.
pub static SERVICE_STATUS: Message = Message {
    name: "ServiceStatus",
    fields: &[f(1, "loadBalancer", msg(&LOAD_BALANCER_STATUS)), f(2, "conditions", list(&CONDITION))],
};

/// `LoadBalancerStatus`.
pub static LOAD_BALANCER_STATUS: Message =
    Message { name: "LoadBalancerStatus", fields: &[f(1, "ingress", list(&LOAD_BALANCER_INGRESS))] };

/// `LoadBalancerIngress`.
pub static LOAD_BALANCER_INGRESS: Message = Message {
    name: "LoadBalancerIngress",
    fields: &[
        f(1, "ip", STR),
        f(2, "hostname", STR),
        f(3, "ipMode", STR_KEEP),
        f(4, "ports", list(&PORT_STATUS)),
    ],
};

/// `PortStatus`.
pub static PORT_STATUS: Message = Message {
    name: "PortStatus",
    fields: &[f(1, "port", I32_KEEP), f(2, "protocol", STR_KEEP), f(3, "error", STR_KEEP)],
};

/// `Event` (core/v1, what client-go's event recorders write).
pub static EVENT: Message = Message {
    name: "Event",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "involvedObject", msg(&OBJECT_REFERENCE)),
        f(3, "reason", STR),
        f(4, "message", STR),
        f(5, "source", msg(&EVENT_SOURCE)),
        f(6, "firstTimestamp", TIME),
        f(7, "lastTimestamp", TIME),
        f(8, "count", I32),
        f(9, "type", STR),
        f(10, "eventTime", MICROTIME),
        f(11, "series", msg(&EVENT_SERIES)),
        f(12, "action", STR),
        f(13, "related", msg(&OBJECT_REFERENCE)),
        f(14, "reportingComponent", STR_KEEP),
        f(15, "reportingInstance", STR_KEEP),
    ],
};

/// `EventSource`.
pub static EVENT_SOURCE: Message =
    Message { name: "EventSource", fields: &[f(1, "component", STR), f(2, "host", STR)] };

/// `EventSeries`.
pub static EVENT_SERIES: Message =
    Message { name: "EventSeries", fields: &[f(1, "count", I32), f(2, "lastObservedTime", MICROTIME)] };

/// `ObjectReference`.
pub static OBJECT_REFERENCE: Message = Message {
    name: "ObjectReference",
    fields: &[
        f(1, "kind", STR),
        f(2, "namespace", STR),
        f(3, "name", STR),
        f(4, "uid", STR),
        f(5, "apiVersion", STR),
        f(6, "resourceVersion", STR),
        f(7, "fieldPath", STR),
    ],
};

/// `Binding` (the body of `pods/binding`).
pub static BINDING: Message = Message {
    name: "Binding",
    fields: &[f(1, "metadata", msg(&OBJECT_META)), f(2, "target", msg(&OBJECT_REFERENCE))],
};
