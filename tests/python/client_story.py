"""The official Python client (`kubernetes` on PyPI) against a running wasmkube.

Run by tests/tests/python_client.rs with KUBECONFIG set; exits non-zero on the first
failure. Every typed call deserializes into the client's models, which raise on a missing
required field or a wrong type, so listing every kind checks our JSON shapes too.

Usage: python client_story.py   (the cluster must run with `up --watch-history 50`)
"""

import sys

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

NS = "default"


def step(msg):
    print(f"- {msg}", flush=True)


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def events_until(stream, want, limit=50):
    """Collect (type, name) pairs from a watch stream until `want` has been seen."""
    seen = []
    for ev in stream:
        seen.append((ev["type"], ev["object"].metadata.name))
        if want in seen or len(seen) >= limit:
            break
    return seen


def main():
    config.load_kube_config()
    core = client.CoreV1Api()
    apps = client.AppsV1Api()

    step("create: a ConfigMap, a Secret and a Deployment whose pods cannot pull")
    cm = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="py-cm", labels={"from": "python"}), data={"a": "1"})
    created = core.create_namespaced_config_map(NS, cm)
    check(created.metadata.uid and created.metadata.resource_version, "server-set metadata returned")
    core.create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="py-secret"), string_data={"k": "v"}))
    labels = {"app": "py"}
    deploy = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="py-deploy"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="127.0.0.1:1/absent:1")]),
            ),
        ),
    )
    apps.create_namespaced_deployment(NS, deploy)

    step("watch: the Deployment's pod appears and reaches a waiting state (statuses deserialize)")
    w = watch.Watch()
    for ev in w.stream(core.list_namespaced_pod, NS, label_selector="app=py", timeout_seconds=60):
        statuses = ev["object"].status.container_statuses or []
        if statuses and statuses[0].state.waiting and statuses[0].state.waiting.reason:
            w.stop()
    pod = core.list_namespaced_pod(NS, label_selector="app=py").items[0]
    check(pod.status.container_statuses[0].image_id is not None, "imageID present")

    step("list: every kind, typed, across namespaces")
    nodes = core.list_node().items
    check(nodes and nodes[0].status.node_info.kubelet_version, "node info deserializes")
    core.list_namespace()
    core.list_pod_for_all_namespaces()
    core.list_event_for_all_namespaces()
    core.list_service_for_all_namespaces()
    core.list_config_map_for_all_namespaces()
    core.list_secret_for_all_namespaces()
    apps.list_deployment_for_all_namespaces()
    apps.list_replica_set_for_all_namespaces()
    scale = apps.read_namespaced_deployment_scale("py-deploy", NS)
    check(scale.spec.replicas == 1, "scale subresource")

    step("patch: a dict is a strategic merge patch; the change is visible")
    patched = core.patch_namespaced_config_map("py-cm", NS, {"data": {"b": "2"}})
    check(patched.data == {"a": "1", "b": "2"}, f"merged data: {patched.data}")

    step("watch from a resourceVersion: changes after it arrive in order")
    rv = core.list_namespaced_config_map(NS).metadata.resource_version
    core.patch_namespaced_config_map("py-cm", NS, {"data": {"c": "3"}})
    core.delete_namespaced_config_map("py-cm", NS)
    seen = events_until(
        w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=30),
        ("DELETED", "py-cm"),
    )
    check(seen[:2] == [("MODIFIED", "py-cm"), ("DELETED", "py-cm")], f"events after {rv}: {seen}")

    step("410: a resourceVersion older than the watch history expires, as the client expects")
    for i in range(60):
        core.create_namespaced_config_map(NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name=f"churn-{i}")))
    expired = False
    try:
        for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=10):
            if ev["type"] == "ERROR" and ev["raw_object"].get("code") == 410:
                expired = True
                break
    except ApiException as e:
        expired = e.status == 410
    check(expired, "an expired resourceVersion gives 410")

    step("delete_collection: every churn ConfigMap in one call")
    core.delete_collection_namespaced_config_map(NS, label_selector="")
    left = [c.metadata.name for c in core.list_namespaced_config_map(NS).items if c.metadata.name.startswith("churn-")]
    check(not left, f"deleted: {left}")

    step("delete: the Deployment (Foreground) and the Secret; 404 afterwards")
    apps.delete_namespaced_deployment("py-deploy", NS, propagation_policy="Foreground")
    core.delete_namespaced_secret("py-secret", NS)
    try:
        core.read_namespaced_secret("py-secret", NS)
        check(False, "secret still readable")
    except ApiException as e:
        check(e.status == 404, f"404 after delete, got {e.status}")
    print("ok", flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report anything to the Rust test
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
