//! `networking.k8s.io/v1` Ingress (what `kubectl create ingress` sends) and IngressClass. Field
//! numbers from upstream's `networking/v1/generated.proto`; `pathType`, `ingressClassName` and
//! the parameter reference's fields are pointers or lack `omitempty` in Go, so they keep zero
//! values.

use super::{meta::OBJECT_META, volumes::TYPED_LOCAL_OBJECT_REFERENCE};
use crate::protobuf::schema::*;

/// `Ingress`.
pub static INGRESS: Message = Message {
    name: "Ingress",
    fields: &[
        f(1, "metadata", msg(&OBJECT_META)),
        f(2, "spec", msg(&INGRESS_SPEC)),
        f(3, "status", msg(&INGRESS_STATUS)),
    ],
};

/// `IngressSpec`.
pub static INGRESS_SPEC: Message = Message {
    name: "IngressSpec",
    fields: &[
        f(4, "ingressClassName", STR_KEEP),
        f(1, "defaultBackend", msg(&INGRESS_BACKEND)),
        f(2, "tls", list(&INGRESS_TLS)),
        f(3, "rules", list(&INGRESS_RULE)),
    ],
};

/// `IngressBackend`.
pub static INGRESS_BACKEND: Message = Message {
    name: "IngressBackend",
    fields: &[
        f(4, "service", msg(&INGRESS_SERVICE_BACKEND)),
        f(3, "resource", msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
    ],
};

/// `IngressServiceBackend` (`name` has no omitempty).
pub static INGRESS_SERVICE_BACKEND: Message = Message {
    name: "IngressServiceBackend",
    fields: &[f(1, "name", STR_KEEP), f(2, "port", msg(&SERVICE_BACKEND_PORT))],
};

/// `ServiceBackendPort`.
pub static SERVICE_BACKEND_PORT: Message =
    Message { name: "ServiceBackendPort", fields: &[f(1, "name", STR), f(2, "number", I32)] };

/// `IngressTLS`.
pub static INGRESS_TLS: Message =
    Message { name: "IngressTLS", fields: &[f(1, "hosts", STRS), f(2, "secretName", STR)] };

/// `IngressRule`: its `IngressRuleValue` is embedded in Go (`json:",inline"`).
pub static INGRESS_RULE: Message =
    Message { name: "IngressRule", fields: &[f(1, "host", STR), f(2, "", inline(&INGRESS_RULE_VALUE))] };

/// `IngressRuleValue`.
pub static INGRESS_RULE_VALUE: Message =
    Message { name: "IngressRuleValue", fields: &[f(1, "http", msg(&HTTP_INGRESS_RULE_VALUE))] };

/// `HTTPIngressRuleValue` (`paths` has no omitempty).
pub static HTTP_INGRESS_RULE_VALUE: Message =
    Message { name: "HTTPIngressRuleValue", fields: &[f(1, "paths", list(&HTTP_INGRESS_PATH))] };

/// `HTTPIngressPath`.
pub static HTTP_INGRESS_PATH: Message = Message {
    name: "HTTPIngressPath",
    fields: &[f(1, "path", STR), f(3, "pathType", STR_KEEP), f(2, "backend", msg(&INGRESS_BACKEND))],
};

/// `IngressStatus`.
pub static INGRESS_STATUS: Message =
    Message { name: "IngressStatus", fields: &[f(1, "loadBalancer", msg(&INGRESS_LOAD_BALANCER_STATUS))] };

/// `IngressLoadBalancerStatus`.
pub static INGRESS_LOAD_BALANCER_STATUS: Message = Message {
    name: "IngressLoadBalancerStatus",
    fields: &[f(1, "ingress", list(&INGRESS_LOAD_BALANCER_INGRESS))],
};

/// `IngressLoadBalancerIngress`.
pub static INGRESS_LOAD_BALANCER_INGRESS: Message = Message {
    name: "IngressLoadBalancerIngress",
    fields: &[f(1, "ip", STR), f(2, "hostname", STR), f(4, "ports", list(&INGRESS_PORT_STATUS))],
};

/// `IngressPortStatus`.
pub static INGRESS_PORT_STATUS: Message = Message {
    name: "IngressPortStatus",
    fields: &[f(1, "port", I32_KEEP), f(2, "protocol", STR_KEEP), f(3, "error", STR_KEEP)],
};

/// `IngressClass`.
pub static INGRESS_CLASS: Message = Message {
    name: "IngressClass",
    fields: &[f(1, "metadata", msg(&OBJECT_META)), f(2, "spec", msg(&INGRESS_CLASS_SPEC))],
};

/// `IngressClassSpec`.
pub static INGRESS_CLASS_SPEC: Message = Message {
    name: "IngressClassSpec",
    fields: &[f(1, "controller", STR), f(2, "parameters", msg(&INGRESS_CLASS_PARAMETERS_REFERENCE))],
};

/// `IngressClassParametersReference`.
pub static INGRESS_CLASS_PARAMETERS_REFERENCE: Message = Message {
    name: "IngressClassParametersReference",
    fields: &[
        f(1, "apiGroup", STR_KEEP),
        f(2, "kind", STR_KEEP),
        f(3, "name", STR_KEEP),
        f(4, "scope", STR_KEEP),
        f(5, "namespace", STR_KEEP),
    ],
};
