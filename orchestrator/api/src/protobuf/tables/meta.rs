//! `meta/v1` messages every object carries (ObjectMeta and what it holds), label selectors,
//! conditions and DeleteOptions.

use crate::protobuf::schema::*;

/// `metav1.ObjectMeta`.
pub static OBJECT_META: Message = Message {
    name: "ObjectMeta",
    fields: &[
        f(1, "name", STR),
        f(2, "generateName", STR),
        f(3, "namespace", STR),
        f(4, "selfLink", STR),
        f(5, "uid", STR),
        f(6, "resourceVersion", STR),
        f(7, "generation", I64),
        f(8, "creationTimestamp", TIME),
        f(9, "deletionTimestamp", TIME),
        f(10, "deletionGracePeriodSeconds", I64_KEEP),
        f(11, "labels", STR_MAP),
        f(12, "annotations", STR_MAP),
        f(13, "ownerReferences", list(&OWNER_REFERENCE)),
        f(14, "finalizers", STRS),
        f(17, "managedFields", list(&MANAGED_FIELDS_ENTRY)),
    ],
};

/// `metav1.OwnerReference`.
pub static OWNER_REFERENCE: Message = Message {
    name: "OwnerReference",
    fields: &[
        f(5, "apiVersion", STR_KEEP),
        f(1, "kind", STR_KEEP),
        f(3, "name", STR_KEEP),
        f(4, "uid", STR_KEEP),
        f(6, "controller", BOOL_KEEP),
        f(7, "blockOwnerDeletion", BOOL_KEEP),
    ],
};

/// `metav1.ManagedFieldsEntry`.
pub static MANAGED_FIELDS_ENTRY: Message = Message {
    name: "ManagedFieldsEntry",
    fields: &[
        f(1, "manager", STR),
        f(2, "operation", STR),
        f(3, "apiVersion", STR),
        f(4, "time", TIME),
        f(6, "fieldsType", STR),
        f(7, "fieldsV1", Ty::FieldsV1),
        f(8, "subresource", STR),
    ],
};

/// `metav1.LabelSelector`.
pub static LABEL_SELECTOR: Message = Message {
    name: "LabelSelector",
    fields: &[f(1, "matchLabels", STR_MAP), f(2, "matchExpressions", list(&LABEL_SELECTOR_REQUIREMENT))],
};

/// `metav1.LabelSelectorRequirement`.
pub static LABEL_SELECTOR_REQUIREMENT: Message = Message {
    name: "LabelSelectorRequirement",
    fields: &[f(1, "key", STR_KEEP), f(2, "operator", STR_KEEP), f(3, "values", STRS)],
};

/// `metav1.Condition` (Service status conditions).
pub static CONDITION: Message = Message {
    name: "Condition",
    fields: &[
        f(1, "type", STR_KEEP),
        f(2, "status", STR_KEEP),
        f(3, "observedGeneration", I64),
        f(4, "lastTransitionTime", TIME),
        f(5, "reason", STR_KEEP),
        f(6, "message", STR_KEEP),
    ],
};

/// `metav1.DeleteOptions` (the body of a DELETE from a typed client, e.g. `kubectl drain`).
pub static DELETE_OPTIONS: Message = Message {
    name: "DeleteOptions",
    fields: &[
        f(1, "gracePeriodSeconds", I64_KEEP),
        f(2, "preconditions", msg(&PRECONDITIONS)),
        f(3, "orphanDependents", BOOL_KEEP),
        f(4, "propagationPolicy", STR_KEEP),
        f(5, "dryRun", STRS),
        f(6, "ignoreStoreReadErrorWithClusterBreakingPotential", BOOL_KEEP),
    ],
};

/// `metav1.Preconditions`.
pub static PRECONDITIONS: Message =
    Message { name: "Preconditions", fields: &[f(1, "uid", STR_KEEP), f(2, "resourceVersion", STR_KEEP)] };
