//! `core/v1` pod volumes: the sources a Wasm or Linux pod can use (hostPath, emptyDir,
//! configMap, secret, projected, downwardAPI, persistentVolumeClaim, nfs, csi, ephemeral,
//! image). The in-tree cloud and legacy volume plugins are reported as unsupported by name.

use super::{
    container::{OBJECT_FIELD_SELECTOR, RESOURCE_FIELD_SELECTOR},
    meta::{LABEL_SELECTOR, OBJECT_META},
    pod::LOCAL_OBJECT_REFERENCE,
};
use crate::protobuf::schema::*;

/// `Volume`: a name and the inlined source.
pub static VOLUME: Message =
    Message { name: "Volume", fields: &[f(1, "name", STR_KEEP), f(2, "", inline(&VOLUME_SOURCE))] };

/// `VolumeSource`.
pub static VOLUME_SOURCE: Message = Message {
    name: "VolumeSource",
    fields: &[
        f(1, "hostPath", msg(&HOST_PATH_VOLUME_SOURCE)),
        f(2, "emptyDir", msg(&EMPTY_DIR_VOLUME_SOURCE)),
        f(3, "gcePersistentDisk", Ty::Unsupported),
        f(4, "awsElasticBlockStore", Ty::Unsupported),
        f(5, "gitRepo", Ty::Unsupported),
        f(6, "secret", msg(&SECRET_VOLUME_SOURCE)),
        f(7, "nfs", msg(&NFS_VOLUME_SOURCE)),
        f(8, "iscsi", Ty::Unsupported),
        f(9, "glusterfs", Ty::Unsupported),
        f(10, "persistentVolumeClaim", msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE)),
        f(11, "rbd", Ty::Unsupported),
        f(12, "flexVolume", Ty::Unsupported),
        f(13, "cinder", Ty::Unsupported),
        f(14, "cephfs", Ty::Unsupported),
        f(15, "flocker", Ty::Unsupported),
        f(16, "downwardAPI", msg(&DOWNWARD_API_VOLUME_SOURCE)),
        f(17, "fc", Ty::Unsupported),
        f(18, "azureFile", Ty::Unsupported),
        f(19, "configMap", msg(&CONFIG_MAP_VOLUME_SOURCE)),
        f(20, "vsphereVolume", Ty::Unsupported),
        f(21, "quobyte", Ty::Unsupported),
        f(22, "azureDisk", Ty::Unsupported),
        f(23, "photonPersistentDisk", Ty::Unsupported),
        f(24, "portworxVolume", Ty::Unsupported),
        f(25, "scaleIO", Ty::Unsupported),
        f(26, "projected", msg(&PROJECTED_VOLUME_SOURCE)),
        f(27, "storageos", Ty::Unsupported),
        f(28, "csi", msg(&CSI_VOLUME_SOURCE)),
        f(29, "ephemeral", msg(&EPHEMERAL_VOLUME_SOURCE)),
        f(30, "image", msg(&IMAGE_VOLUME_SOURCE)),
    ],
};

/// `HostPathVolumeSource`.
pub static HOST_PATH_VOLUME_SOURCE: Message =
    Message { name: "HostPathVolumeSource", fields: &[f(1, "path", STR_KEEP), f(2, "type", STR_KEEP)] };

/// `EmptyDirVolumeSource`.
pub static EMPTY_DIR_VOLUME_SOURCE: Message =
    Message { name: "EmptyDirVolumeSource", fields: &[f(1, "medium", STR), f(2, "sizeLimit", QTY)] };

/// `SecretVolumeSource`.
pub static SECRET_VOLUME_SOURCE: Message = Message {
    name: "SecretVolumeSource",
    fields: &[
        f(1, "secretName", STR),
        f(2, "items", list(&KEY_TO_PATH)),
        f(3, "defaultMode", I32_KEEP),
        f(4, "optional", BOOL_KEEP),
    ],
};

/// `KeyToPath`.
pub static KEY_TO_PATH: Message = Message {
    name: "KeyToPath",
    fields: &[f(1, "key", STR_KEEP), f(2, "path", STR_KEEP), f(3, "mode", I32_KEEP)],
};

/// `NFSVolumeSource`.
pub static NFS_VOLUME_SOURCE: Message = Message {
    name: "NFSVolumeSource",
    fields: &[f(1, "server", STR_KEEP), f(2, "path", STR_KEEP), f(3, "readOnly", BOOL)],
};

/// `PersistentVolumeClaimVolumeSource`.
pub static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Message = Message {
    name: "PersistentVolumeClaimVolumeSource",
    fields: &[f(1, "claimName", STR_KEEP), f(2, "readOnly", BOOL)],
};

/// `DownwardAPIVolumeSource`.
pub static DOWNWARD_API_VOLUME_SOURCE: Message = Message {
    name: "DownwardAPIVolumeSource",
    fields: &[f(1, "items", list(&DOWNWARD_API_VOLUME_FILE)), f(2, "defaultMode", I32_KEEP)],
};

/// `DownwardAPIVolumeFile`.
pub static DOWNWARD_API_VOLUME_FILE: Message = Message {
    name: "DownwardAPIVolumeFile",
    fields: &[
        f(1, "path", STR_KEEP),
        f(2, "fieldRef", msg(&OBJECT_FIELD_SELECTOR)),
        f(3, "resourceFieldRef", msg(&RESOURCE_FIELD_SELECTOR)),
        f(4, "mode", I32_KEEP),
    ],
};

/// `ConfigMapVolumeSource`.
pub static CONFIG_MAP_VOLUME_SOURCE: Message = Message {
    name: "ConfigMapVolumeSource",
    fields: &[
        f(1, "", inline(&LOCAL_OBJECT_REFERENCE)),
        f(2, "items", list(&KEY_TO_PATH)),
        f(3, "defaultMode", I32_KEEP),
        f(4, "optional", BOOL_KEEP),
    ],
};

/// `ProjectedVolumeSource`.
pub static PROJECTED_VOLUME_SOURCE: Message = Message {
    name: "ProjectedVolumeSource",
    fields: &[f(1, "sources", list(&VOLUME_PROJECTION)), f(2, "defaultMode", I32_KEEP)],
};

/// `VolumeProjection`.
pub static VOLUME_PROJECTION: Message = Message {
    name: "VolumeProjection",
    fields: &[
        f(1, "secret", msg(&SECRET_PROJECTION)),
        f(2, "downwardAPI", msg(&DOWNWARD_API_PROJECTION)),
        f(3, "configMap", msg(&CONFIG_MAP_PROJECTION)),
        f(4, "serviceAccountToken", msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION)),
        f(5, "clusterTrustBundle", msg(&CLUSTER_TRUST_BUNDLE_PROJECTION)),
        f(6, "podCertificate", msg(&POD_CERTIFICATE_PROJECTION)),
    ],
};

/// `SecretProjection`.
pub static SECRET_PROJECTION: Message = Message {
    name: "SecretProjection",
    fields: &[
        f(1, "", inline(&LOCAL_OBJECT_REFERENCE)),
        f(2, "items", list(&KEY_TO_PATH)),
        f(4, "optional", BOOL_KEEP),
    ],
};

/// `ConfigMapProjection`.
pub static CONFIG_MAP_PROJECTION: Message = Message {
    name: "ConfigMapProjection",
    fields: &[
        f(1, "", inline(&LOCAL_OBJECT_REFERENCE)),
        f(2, "items", list(&KEY_TO_PATH)),
        f(4, "optional", BOOL_KEEP),
    ],
};

/// `DownwardAPIProjection`.
pub static DOWNWARD_API_PROJECTION: Message =
    Message { name: "DownwardAPIProjection", fields: &[f(1, "items", list(&DOWNWARD_API_VOLUME_FILE))] };

/// `ServiceAccountTokenProjection`.
pub static SERVICE_ACCOUNT_TOKEN_PROJECTION: Message = Message {
    name: "ServiceAccountTokenProjection",
    fields: &[f(1, "audience", STR), f(2, "expirationSeconds", I64_KEEP), f(3, "path", STR_KEEP)],
};

/// `ClusterTrustBundleProjection`.
pub static CLUSTER_TRUST_BUNDLE_PROJECTION: Message = Message {
    name: "ClusterTrustBundleProjection",
    fields: &[
        f(1, "name", STR_KEEP),
        f(2, "signerName", STR_KEEP),
        f(3, "labelSelector", msg(&LABEL_SELECTOR)),
        f(5, "optional", BOOL_KEEP),
        f(4, "path", STR_KEEP),
    ],
};

/// `PodCertificateProjection` (without v1.37's `user`, whose field number we have not taken).
pub static POD_CERTIFICATE_PROJECTION: Message = Message {
    name: "PodCertificateProjection",
    fields: &[
        f(1, "signerName", STR_KEEP),
        f(2, "keyType", STR_KEEP),
        f(3, "maxExpirationSeconds", I32_KEEP),
        f(4, "credentialBundlePath", STR),
        f(5, "keyPath", STR),
        f(6, "certificateChainPath", STR),
        f(7, "userAnnotations", STR_MAP),
    ],
};

/// `CSIVolumeSource`.
pub static CSI_VOLUME_SOURCE: Message = Message {
    name: "CSIVolumeSource",
    fields: &[
        f(1, "driver", STR_KEEP),
        f(2, "readOnly", BOOL_KEEP),
        f(3, "fsType", STR_KEEP),
        f(4, "volumeAttributes", STR_MAP),
        f(5, "nodePublishSecretRef", msg(&LOCAL_OBJECT_REFERENCE)),
    ],
};

/// `ImageVolumeSource`.
pub static IMAGE_VOLUME_SOURCE: Message =
    Message { name: "ImageVolumeSource", fields: &[f(1, "reference", STR), f(2, "pullPolicy", STR)] };

/// `EphemeralVolumeSource`.
pub static EPHEMERAL_VOLUME_SOURCE: Message = Message {
    name: "EphemeralVolumeSource",
    fields: &[f(1, "volumeClaimTemplate", msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE))],
};

/// `PersistentVolumeClaimTemplate`.
pub static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Message = Message {
    name: "PersistentVolumeClaimTemplate",
    fields: &[f(1, "metadata", msg(&OBJECT_META)), f(2, "spec", msg(&PERSISTENT_VOLUME_CLAIM_SPEC))],
};

/// `PersistentVolumeClaimSpec`.
pub static PERSISTENT_VOLUME_CLAIM_SPEC: Message = Message {
    name: "PersistentVolumeClaimSpec",
    fields: &[
        f(1, "accessModes", STRS),
        f(4, "selector", msg(&LABEL_SELECTOR)),
        f(2, "resources", msg(&VOLUME_RESOURCE_REQUIREMENTS)),
        f(3, "volumeName", STR),
        f(5, "storageClassName", STR_KEEP),
        f(6, "volumeMode", STR_KEEP),
        f(7, "dataSource", msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        f(8, "dataSourceRef", msg(&TYPED_OBJECT_REFERENCE)),
        f(9, "volumeAttributesClassName", STR_KEEP),
    ],
};

/// `VolumeResourceRequirements`.
pub static VOLUME_RESOURCE_REQUIREMENTS: Message = Message {
    name: "VolumeResourceRequirements",
    fields: &[f(1, "limits", QTY_MAP), f(2, "requests", QTY_MAP)],
};

/// `TypedLocalObjectReference`.
pub static TYPED_LOCAL_OBJECT_REFERENCE: Message = Message {
    name: "TypedLocalObjectReference",
    fields: &[f(1, "apiGroup", STR_KEEP), f(2, "kind", STR_KEEP), f(3, "name", STR_KEEP)],
};

/// `TypedObjectReference`.
pub static TYPED_OBJECT_REFERENCE: Message = Message {
    name: "TypedObjectReference",
    fields: &[
        f(1, "apiGroup", STR_KEEP),
        f(2, "kind", STR_KEEP),
        f(3, "name", STR_KEEP),
        f(4, "namespace", STR_KEEP),
    ],
};
